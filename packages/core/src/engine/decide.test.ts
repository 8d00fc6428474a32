/**
 * The VM's decider: the one function that produces events for a VM's stream, for commands of the
 * bus and for the engine's own inputs (a task's steps, recovery, domain events), with ownership.
 */
import { describe, expect, it } from 'vitest';
import { XenopsError } from '../errors.js';
import type { EventBody } from '../events/event.js';
import { testDomainCreated, testVm, testVmConfig } from '../testing/vms.js';
import type { VmAggregate } from '../model/vm-aggregate.js';
import { decide, withAudit, type Decision, type DecidedEvent, type VmInput } from './decide.js';
import { DONE } from './effect.js';
import { notOwnerError, ownerNamedBy, ownerOf } from './ownership.js';

const ctx = { hostId: 'h1', nowMs: 1_000_000 };
const added: EventBody = { type: 'VmAdded', vmId: 'v', config: testVmConfig('v') };
const claim = (host: string, previousHost = ''): EventBody => ({ type: 'VmOwnerChanged', vmId: 'v', host, previousHost });
const task = (operation: object, host = 'h1'): EventBody => ({ type: 'TaskCreated', vmId: 'v', operation: operation as never, host, ctimeMs: 0 });

function ok(d: Decision | XenopsError): Decision {
  if (d instanceof XenopsError) throw d;
  return d;
}
const bodies = (events: readonly DecidedEvent[]) => events.map((e) => ('body' in e ? e.body : e));
const types = (d: Decision | XenopsError) => bodies(ok(d).events).map((e) => e.type);

describe('ownership (ARCHITECTURE.md "One writer per stream")', () => {
  it('a VM is free without a domain, a suspend image or work; else its recorded owner\u2019s, or for old logs its domain\u2019s or task\u2019s host', () => {
    expect(ownerOf(testVm('v', [added, claim('h2')]))).toBeUndefined();
    expect(ownerOf(testVm('v', [added, claim('h2'), task({ kind: 'VM.pause' }, 'h2')]))).toBe('h2');
    expect(ownerOf(testVm('v', [added, claim('h2'), testDomainCreated('v', 'h2')]))).toBe('h2');
    // Logs written before ownership was recorded.
    expect(ownerOf(testVm('v', [added, testDomainCreated('v', 'h3')]))).toBe('h3');
    expect(ownerOf(testVm('v', [added, task({ kind: 'VM.pause' }, 'h4')]))).toBe('h4');
  });

  it('a command for a VM another host owns is refused with the typed error, naming the owner', () => {
    const vm = testVm('v', [added, claim('h2'), testDomainCreated('v', 'h2')]);
    const refused = decide(vm, { type: 'SubmitOperation', vmId: 'v', operation: { kind: 'VM.pause' } }, ctx);
    expect(refused).toBeInstanceOf(XenopsError);
    expect((refused as XenopsError).value).toEqual(['Internal_error', 'VM v is owned by host h2; this is host h1']);
    expect(ownerNamedBy((refused as XenopsError).value)).toBe('h2');
    expect(ownerNamedBy(['Internal_error', 'something else'])).toBeUndefined();
    expect(notOwnerError('a b', 'x; y', 'z').value).toEqual(['Internal_error', 'VM a b is owned by host x; y; this is host z']);
  });

  it('a decision on a free VM recorded as someone else\u2019s (or no one\u2019s) starts with the claim, in the same decision; the owner\u2019s own decisions do not', () => {
    const fresh = decide(testVm('v', []), { type: 'AddVm', config: testVmConfig('v'), refuseExisting: false }, ctx);
    expect(bodies(ok(fresh).events)).toEqual([claim('h1'), added]);
    const elsewhere = testVm('v', [added, claim('h2')]);
    expect(bodies(ok(decide(elsewhere, { type: 'SubmitOperation', vmId: 'v', operation: { kind: 'VM.pause' } }, ctx)).events)[0]).toEqual(claim('h1', 'h2'));
    const mine = testVm('v', [added, claim('h1')]);
    expect(types(decide(mine, { type: 'SubmitOperation', vmId: 'v', operation: { kind: 'VM.pause' } }, ctx))).toEqual(['TaskCreated']);
    // A decision with nothing to write claims nothing; ClaimOwnership claims alone.
    expect(ok(decide(elsewhere, { type: 'CancelTask', vmId: 'v', taskId: '9' }, ctx)).events).toEqual([]);
    expect(bodies(ok(decide(elsewhere, { type: 'ClaimOwnership' }, ctx)).events)).toEqual([claim('h1', 'h2')]);
    expect(ok(decide(mine, { type: 'ClaimOwnership' }, ctx)).events).toEqual([]);
    // Old logs: the owner by fallback claims on its first write.
    const legacy = testVm('v', [added, testDomainCreated('v', 'h1')]);
    expect(types(decide(legacy, { type: 'SubmitOperation', vmId: 'v', operation: { kind: 'VM.pause' } }, ctx))).toEqual(['VmOwnerChanged', 'TaskCreated']);
  });
});

describe('commands of the bus', () => {
  it('DestroyTask destroys each task in one decision; DestroyTaskOnFinish of an ended task at once', () => {
    const vm = testVm('v', [added, claim('h1')]);
    expect(bodies(ok(decide(vm, { type: 'DestroyTask', vmId: 'v', taskIds: ['3', '4'] }, ctx)).events)).toEqual([
      { type: 'TaskDestroyed', taskId: '3' },
      { type: 'TaskDestroyed', taskId: '4' },
    ]);
    expect(types(decide(vm, { type: 'DestroyTaskOnFinish', vmId: 'v', taskId: '3' }, ctx))).toEqual(['TaskDestroyed']);
  });
});

describe('a task\u2019s steps (run-task.ts drives, the decider decides)', () => {
  const queued = testVm('v', [added, claim('h1'), task({ kind: 'VM.start', paused: false, unpause: false })]);
  const startedVm = (vm: VmAggregate, input: VmInput) => {
    const d = ok(decide(vm, input, ctx));
    return { d, vm: testVm('v', [added, claim('h1'), task({ kind: 'VM.start', paused: false, unpause: false }), ...bodies(d.events)]) };
  };

  it('StartTask expands the operation against the VM now: the atoms, or the precondition\u2019s failure at once', () => {
    const { d } = startedVm(queued, { type: 'StartTask', taskId: '3', startedMs: 5 });
    expect(types(d)).toEqual(['TaskStarted']);
    expect(d.plan?.atoms.map((a) => a.kind)).toEqual(['VM_create', 'VM_build', 'VM_create_device_model', 'VM_mark_survivable']);
    expect(d.plan?.onFailure).toBe('check');
    const running = testVm('v', [added, claim('h1'), testDomainCreated('v', 'h1'), task({ kind: 'VM.start', paused: false, unpause: false, autoDestroy: true })]);
    const refused = ok(decide(running, { type: 'StartTask', taskId: '4', startedMs: 5 }, ctx));
    expect(refused.plan).toBeUndefined();
    expect(bodies(refused.events)).toEqual([
      { type: 'TaskStarted', taskId: '4', startedMs: 5 },
      { type: 'TaskFailed', taskId: '4', error: ['Bad_power_state', ['Paused', 'Halted']], cancelPointsSeen: 0, duration: 0 },
      { type: 'TaskDestroyed', taskId: '4' },
    ]);
    // A task's events carry its dbg and actor task/<id>; the decision's others the VM's.
    const audited = withAudit(refused.events, { dbg: 'caller', timeMs: 0, host: 'h1', actor: 'vm/v' });
    expect(audited.map((e) => e.audit.actor)).toEqual(['task/4', 'task/4', 'task/4']);
    expect(audited[0]!.audit.dbg).toBe('t');
  });

  it('AtomPerformed records the observed facts and the progress, or the end; a seed clean shutdown whose guest does not answer goes on', () => {
    const { vm } = startedVm(queued, { type: 'StartTask', taskId: '3', startedMs: 5 });
    const performed = { atom: { kind: 'VM_create' } as const, step: { kind: 'effect' as const, effect: { kind: 'VM_create' as const, vmId: 'v', config: testVmConfig('v') } }, observation: { kind: 'created' as const, domid: 4, consoles: [] } };
    const d = ok(decide(vm, { type: 'AtomPerformed', taskId: '3', performed, progress: 0.25, cancelPointsSeen: 1, cancellable: true, last: false, duration: 0.1, resultJson: '' }, ctx));
    expect(types(d)).toEqual(['DomainCreated', 'TaskProgressed']);
    expect(bodies(d.events)[1]).toEqual({ type: 'TaskProgressed', taskId: '3', progress: 0.25, cancelPointsSeen: 1, cancellable: true, atom: 'VM_create' });

    const seed = testVm('v', [added, claim('h1'), testDomainCreated('v', 'h1'), task({ kind: 'VM.shutdown', delay: 1, fallbackToHard: true }), { type: 'TaskStarted', taskId: '4', startedMs: 0 }]);
    const noAck = {
      atom: { kind: 'VM_shutdown_domain', reason: 'poweroff', delay: 1 } as const,
      step: { kind: 'effect' as const, effect: { kind: 'VM_shutdown_domain' as const, vmId: 'v', reason: 'poweroff' as const, ackTimeoutS: 1, shutdownTimeoutS: 1 } },
      observation: { kind: 'shutdown' as const, outcome: 'no-ack' as const },
    };
    const input = { type: 'AtomPerformed' as const, taskId: '4', performed: noAck, progress: 0.5, cancelPointsSeen: 2, cancellable: true, last: false, duration: 1, resultJson: '' };
    expect(types(decide(seed, input, ctx))).toEqual(['TaskProgressed']);
    const xenopsd = testVm('v', [added, claim('h1'), testDomainCreated('v', 'h1'), task({ kind: 'VM.shutdown', delay: 1, fallbackToHard: false }), { type: 'TaskStarted', taskId: '4', startedMs: 0 }]);
    expect((decide(xenopsd, input, ctx) as XenopsError).value).toBe('Failed_to_acknowledge_shutdown_request');

    const last = ok(decide(seed, { ...input, performed: { ...noAck, observation: { kind: 'shutdown', outcome: 'down' } }, last: true }, ctx));
    expect(bodies(last.events)).toEqual([
      { type: 'DomainShutdownAcknowledged', vmId: 'v', reason: 'poweroff' },
      { type: 'TaskCompleted', taskId: '4', duration: 1, resultJson: '', cancelPointsSeen: 2 },
    ]);
  });

  it('TaskFailed records the undo, the failure and the state check of §7.3; PointOfNoReturn makes the task not cancellable', () => {
    const { vm } = startedVm(queued, { type: 'StartTask', taskId: '3', startedMs: 5 });
    const undo = { atom: { kind: 'VBD_set_active', dev: 'a', active: false } as const, step: { kind: 'effect' as const, effect: { kind: 'VBD_set_active' as const, vmId: 'v', dev: 'a', active: false } }, observation: DONE };
    const d = ok(decide(vm, { type: 'TaskFailed', taskId: '3', error: ['Cancelled', '3'], cancelPointsSeen: 2, duration: 1, undone: [undo], checkState: true }, ctx));
    expect(bodies(d.events)).toEqual([
      { type: 'DeviceActiveSet', vmId: 'v', kind: 'vbd', dev: 'a', active: false },
      { type: 'TaskFailed', taskId: '3', error: ['Cancelled', '3'], cancelPointsSeen: 2, duration: 1 },
      { type: 'TaskCreated', vmId: 'v', operation: { kind: 'VM.check_state', reason: 'VM.start failed', autoDestroy: true }, host: 'h1', ctimeMs: ctx.nowMs },
    ]);
    expect(withAudit(d.events, { dbg: 'x', timeMs: 0, host: 'h1', actor: 'vm/v' })[2]!.audit).toMatchObject({ dbg: 'internal:check_state', actor: 'vm/v' });
    expect(bodies(ok(decide(vm, { type: 'PointOfNoReturn', taskId: '3', progress: 0.5, cancelPointsSeen: 2 }, ctx)).events)).toEqual([
      { type: 'TaskProgressed', taskId: '3', progress: 0.5, cancelPointsSeen: 2, cancellable: false, atom: 'point of no return' },
    ]);
    // A step of a task that is not running is refused (nothing is written for it).
    expect(decide(queued, { type: 'PointOfNoReturn', taskId: '3', progress: 0, cancelPointsSeen: 0 }, ctx)).toBeInstanceOf(XenopsError);
  });

  it('Recover fails the task this host left executing and queues a state check; another host\u2019s task is left alone', () => {
    const { vm } = startedVm(queued, { type: 'StartTask', taskId: '3', startedMs: 5 });
    expect(bodies(ok(decide(vm, { type: 'Recover' }, ctx)).events)).toEqual([
      { type: 'TaskFailed', taskId: '3', error: ['Internal_error', 'Interrupted by service restart'], cancelPointsSeen: 0, duration: 0 },
      { type: 'TaskCreated', vmId: 'v', operation: { kind: 'VM.check_state', reason: 'interrupted by service restart', autoDestroy: true }, host: 'h1', ctimeMs: ctx.nowMs },
    ]);
    expect(ok(decide(testVm('v', [added, claim('h1')]), { type: 'Recover' }, ctx)).events).toEqual([]);
  });

  it('Recover after the log could not be written does not blame a service restart', () => {
    const { vm } = startedVm(queued, { type: 'StartTask', taskId: '3', startedMs: 5 });
    expect(bodies(ok(decide(vm, { type: 'Recover', cause: 'store-outage' }, ctx)).events)).toEqual([
      {
        type: 'TaskFailed',
        taskId: '3',
        error: ['Internal_error', 'Interrupted: the event log could not be written (the store was unreachable)'],
        cancelPointsSeen: 0,
        duration: 0,
      },
      {
        type: 'TaskCreated',
        vmId: 'v',
        operation: { kind: 'VM.check_state', reason: 'interrupted: the event log could not be written', autoDestroy: true },
        host: 'h1',
        ctimeMs: ctx.nowMs,
      },
    ]);
  });
});

describe('what the backend reported', () => {
  it('GuestEvent queues the §7.5 action list, with the crash-loop window of the engine setting', () => {
    const vm = testVm('v', [added, claim('h1'), { ...testDomainCreated('v', 'h1'), startTime: 900 } as EventBody]);
    const crash = (crashLoopWindowS?: number) =>
      bodies(ok(decide({ ...vm, config: { ...vm.config!, on_crash: ['Start'] } }, { type: 'GuestEvent', action: 'crash' }, { ...ctx, ...(crashLoopWindowS === undefined ? {} : { crashLoopWindowS }) })).events);
    // Ran 100 s: within the default 120 s window, Start becomes Shutdown.
    expect(crash()[1]).toMatchObject({ operation: { kind: 'VM.guest_action', action: 'crash', actions: ['Shutdown'] } });
    expect(crash(60)[1]).toMatchObject({ operation: { actions: ['Start'] } });
    expect((decide(testVm('v', [added]), { type: 'GuestEvent', action: 'halt' }, ctx) as XenopsError).value).toEqual(['Does_not_exist', ['domain', 'v']]);
  });

  it('Reconcile records a domain that vanished (and checks the VM) or was paused behind the engine\u2019s back', () => {
    const vm = testVm('v', [added, claim('h1'), testDomainCreated('v', 'h1', 5)]);
    expect(types(decide(vm, { type: 'Reconcile' }, ctx))).toEqual(['DomainDestroyed', 'TaskCreated']);
    expect(types(decide(vm, { type: 'Reconcile', observed: { vmId: 'v', domid: 5, paused: false } }, ctx))).toEqual(['DomainUnpaused']);
    expect(types(decide(vm, { type: 'Reconcile', observed: { vmId: 'v', domid: 5, paused: true } }, ctx))).toEqual([]);
  });
});
