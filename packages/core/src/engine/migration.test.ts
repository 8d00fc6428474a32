/**
 * VM.migrate in the engine (API.md §7.8): the plan on the source, the switch-over's facts, the
 * destination's take-over, the power state kept throughout, and what a restart does to each side.
 */
import { describe, expect, it } from 'vitest';
import { XenopsError } from '../errors.js';
import type { EventBody } from '../events/event.js';
import type { Operation } from '../model/operation.js';
import { powerStateOf } from '../model/vm-aggregate.js';
import { testDomainCreated, testVm, testVmConfig } from '../testing/vms.js';
import { describeAtom, type Atom } from './atom.js';
import { prepareAtom } from './atom-semantics.js';
import { decide, type Decision, type DecidedEvent } from './decide.js';
import { planOperation } from './plan.js';

const added: EventBody = { type: 'VmAdded', vmId: 'v', config: testVmConfig('v') };
const claim: EventBody = { type: 'VmOwnerChanged', vmId: 'v', host: 'h1', previousHost: '' };
const vif: EventBody = {
  type: 'DeviceAdded',
  vmId: 'v',
  device: { kind: 'vif', config: { id: ['v', '0'], position: 0, mac: 'fe:ff:ff:ff:ff:ff', carrier: true, mtu: 1500, backend: ['Local', 'xenbr0'], other_config: [], locking_mode: 'Unlocked', extra_private_keys: [], ipv4_configuration: 'Unspecified4', ipv6_configuration: 'Unspecified6' } as never },
};
const vbd: EventBody = {
  type: 'DeviceAdded',
  vmId: 'v',
  device: { kind: 'vbd', config: { id: ['v', 'xvda'], mode: 'ReadWrite', ty: 'Disk', unpluggable: true, backend: ['VDI', 'sr1/a'], extra_backend_keys: [], extra_private_keys: [], persistent: true, can_attach_early: false } as never },
};
const migrateOp = (destination: string, over: Partial<Extract<Operation, { kind: 'VM.migrate' }>> = {}): Operation => ({
  kind: 'VM.migrate',
  url: `xenops://${destination}`,
  destination,
  vdiMap: [],
  vifMapJson: '{}',
  pciMapJson: '{}',
  ...over,
});
const running = (...more: EventBody[]) => testVm('v', [added, claim, vif, vbd, testDomainCreated('v', 'h1', 4), { type: 'DomainBuilt', vmId: 'v' }, { type: 'DomainUnpaused', vmId: 'v' }, ...more]);
const kinds = (atoms: readonly Atom[]) => atoms.map((a) => a.kind);
const ok = (d: Decision | XenopsError): Decision => {
  if (d instanceof XenopsError) throw d;
  return d;
};
const bodies = (events: readonly DecidedEvent[]) => events.map((e) => ('body' in e ? e.body : e));

describe('the plan of VM.migrate on its source', () => {
  it('another host: the live save, the teardown, the switch-over; the destination\u2019s part is not here', () => {
    const plan = planOperation(migrateOp('h2'), running());
    if (!plan.ok) throw plan.error;
    expect(plan.onFailure).toBe('check');
    const ks = kinds(plan.atoms);
    expect(ks[0]).toBe('VM_migrate_send');
    expect(ks.at(-1)).toBe('VM_migrate_handover');
    expect(ks).toContain('VM_destroy');
    expect(ks).not.toContain('VM_create');
    expect(describeAtom(plan.atoms[0]!)).toBe('VM_save(live, to h2)');
    // The progress at the switch-over counts both sides' weights (VM_save(live) and VM_restore weigh 10).
    const handover = plan.atoms.at(-1) as Extract<Atom, { kind: 'VM_migrate_handover' }>;
    expect(handover.progress).toBeGreaterThan(0.3);
    expect(handover.progress).toBeLessThan(0.7);
  });

  it('this same host (localhost migration): the destination\u2019s atoms follow in the same plan, with VM_unpause for a Running VM only', () => {
    const plan = planOperation(migrateOp('h1'), running());
    if (!plan.ok) throw plan.error;
    const ks = kinds(plan.atoms);
    expect(ks.slice(ks.indexOf('VM_migrate_handover') + 1)).toEqual([
      'VM_create',
      'VM_migrate_receive',
      'VBD_set_active',
      'VBD_epoch_begin',
      'VBD_plug',
      'VIF_set_active',
      'VIF_plug',
      'VM_create_device_model',
      'VM_mark_survivable',
      'VM_unpause',
    ]);
    const paused = planOperation(migrateOp('h1'), running({ type: 'DomainPaused', vmId: 'v' }));
    if (!paused.ok) throw paused.error;
    expect(kinds(paused.atoms).at(-1)).toBe('VM_mark_survivable');
  });

  it('refused: a Halted VM (Bad_power_state), maps that do not decode (Internal_error)', () => {
    const halted = planOperation(migrateOp('h2'), testVm('v', [added]));
    expect(halted).toEqual({ ok: false, error: new XenopsError(['Bad_power_state', ['Halted', 'Running']]) });
    const bad = planOperation(migrateOp('h2', { vifMapJson: '{"0": 7}' }), running());
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error.tag).toBe('Internal_error');
    expect(planOperation(migrateOp('h2', { pciMapJson: 'not json' }), running()).ok).toBe(false);
  });
});

describe('the switch-over and the destination', () => {
  // The source's history up to its teardown: the migration task running, the domain destroyed.
  const sourceHistory = (destination: string) => {
    const base: EventBody[] = [added, claim, vif, vbd, testDomainCreated('v', 'h1', 4), { type: 'DomainBuilt', vmId: 'v' }, { type: 'DomainUnpaused', vmId: 'v' }];
    const created: EventBody = { type: 'TaskCreated', vmId: 'v', operation: migrateOp(destination, { vdiMap: [['sr1/a', 'sr2/a']], vifMapJson: '{"0":["Local","xenbr9"]}' }), host: 'h1', ctimeMs: 0 };
    const taskId = testVm('v', [...base, created]).queue[0]!.taskId;
    const started: EventBody[] = [...base, created, { type: 'TaskStarted', taskId, startedMs: 0 }];
    return { taskId, started, tornDown: [...started, { type: 'DomainDestroyed', vmId: 'v' } as EventBody] };
  };
  const handover = (destination: string): Atom => ({ kind: 'VM_migrate_handover', destination, progress: 0.5, vdiMap: [['sr1/a', 'sr2/a']], vifMapJson: '{"0":["Local","xenbr9"]}', pciMapJson: '{}' });
  const switchOver = (history: EventBody[], destination: string): EventBody[] => {
    const step = prepareAtom(handover(destination), testVm('v', history));
    if (step instanceof XenopsError || step.kind !== 'facts') throw new Error('expected facts');
    return [...step.events];
  };

  it('the maps rewrite the devices and the VM passes with its running task, in one batch; VM.stat keeps Running', () => {
    const { taskId, started, tornDown } = sourceHistory('h2');
    expect(testVm('v', started).running?.migration).toEqual({ wasPaused: false, handedOver: false, progress: 0 });
    expect(powerStateOf(testVm('v', tornDown))).toBe('Running');
    const facts = switchOver(tornDown, 'h2');
    expect(facts.map((e) => e.type)).toEqual(['DeviceConfigChanged', 'DeviceConfigChanged', 'VmOwnerChanged']);
    const passed = [...tornDown, ...facts];
    const after = testVm('v', passed);
    expect(after.owner).toBe('h2');
    expect(after.running).toMatchObject({ taskId, host: 'h2', migration: { handedOver: true, progress: 0.5, wasPaused: false } });
    expect(after.devices.vbd.get('xvda')?.config.backend).toEqual(['VDI', 'sr2/a']);
    expect(after.devices.vif.get('0')?.config.backend).toEqual(['Local', 'xenbr9']);
    expect(powerStateOf(after)).toBe('Running');

    // The source's decider refuses everything now; the destination's takes the task over, once.
    expect(decide(after, { type: 'ReceiveMigration', taskId }, { hostId: 'h1', nowMs: 0 })).toBeInstanceOf(XenopsError);
    const receive = ok(decide(after, { type: 'ReceiveMigration', taskId }, { hostId: 'h2', nowMs: 0 }));
    expect(bodies(receive.events)).toEqual([{ type: 'MigrationReceived', vmId: 'v', taskId }]);
    expect(kinds(receive.plan!.atoms)[0]).toBe('VM_create');
    expect(receive.plan!.progressFrom).toBe(0.5);
    const taken = testVm('v', [...passed, ...(bodies(receive.events) as EventBody[])]);
    expect(taken.running?.migration?.handedOver).toBe(false);
    expect(ok(decide(taken, { type: 'ReceiveMigration', taskId }, { hostId: 'h2', nowMs: 0 })).events).toEqual([]);
  });

  it('a restart of the destination before it took the task over does not fail it; after, it does (§7.1)', () => {
    const { taskId, tornDown } = sourceHistory('h2');
    const passed = [...tornDown, ...switchOver(tornDown, 'h2')];
    expect(ok(decide(testVm('v', passed), { type: 'Recover' }, { hostId: 'h2', nowMs: 0 })).events).toEqual([]);
    const taken = testVm('v', [...passed, { type: 'MigrationReceived', vmId: 'v', taskId }]);
    const recovered = bodies(ok(decide(taken, { type: 'Recover' }, { hostId: 'h2', nowMs: 0 })).events) as EventBody[];
    expect(recovered.map((e) => e.type)).toEqual(['TaskFailed', 'TaskCreated']);
  });

  it('tasks queued behind the migration go with the VM: the destination runs them', () => {
    const { tornDown } = sourceHistory('h2');
    const queued: EventBody = { type: 'TaskCreated', vmId: 'v', operation: { kind: 'VM.pause' }, host: 'h1', ctimeMs: 0 };
    const history = [...tornDown, queued];
    const after = testVm('v', [...history, ...switchOver(history, 'h2')]);
    expect(after.queue.map((t) => t.host)).toEqual(['h2']);
  });

  it('a localhost switch-over is taken over in the same batch', () => {
    const { taskId, tornDown } = sourceHistory('h1');
    expect(switchOver(tornDown, 'h1').at(-1)).toEqual({ type: 'MigrationReceived', vmId: 'v', taskId });
  });

  it('the switch-over is refused while the source domain exists', () => {
    const { started } = sourceHistory('h2');
    expect(prepareAtom(handover('h2'), testVm('v', started))).toBeInstanceOf(XenopsError);
  });
});
