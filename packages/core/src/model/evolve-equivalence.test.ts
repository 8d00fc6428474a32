/**
 * The immer-free fold (issue 17 item 5) against the immer fold it replaced (testing/immer-evolve.ts):
 * over generated logs with every event type, the same events give deep-equal VMs and tasks, the
 * same records shared with the state before (the change feed and the UPDATES set diff by
 * reference), and so the same Dynamic.id signals and removals per event.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventBody, LogEvent } from '../events/event.js';
import { immerEvolveTask, immerEvolveVmAll } from '../testing/immer-evolve.js';
import { testVmConfig } from '../testing/vms.js';
import { DEVICE_KINDS, type DeviceKind } from './devices.js';
import { dynamicIdsOf } from './dynamic-ids.js';
import { evolveTask, taskIdOf, type TaskRecord } from './task-record.js';
import { emptyVm, evolveVmAll, type VmAggregate } from './vm-aggregate.js';

const VM_IDS = ['a', 'b'] as const;
const DEVS = ['x', 'y'] as const;

const vmId = fc.constantFrom(...VM_IDS);
// Task ids are the seqs of their TaskCreated (or '' for the task of the same message).
const taskId = fc.oneof(fc.integer({ min: 1, max: 20 }).map(String), fc.constant(''));
const kind = fc.constantFrom<DeviceKind>('vbd', 'vif');
const dev = fc.constantFrom(...DEVS);
const small = fc.integer({ min: 0, max: 2 });
const bool = fc.boolean();
const xsdata = fc.array(fc.tuple(fc.constantFrom('k', 'l'), fc.constantFrom('1', '2')), { maxLength: 2 });
const record = fc.record({
  hvm: bool,
  domainType: fc.constant('Domain_HVM' as const),
  vcpus: small,
  memoryTarget: small,
  memoryLimit: small,
  shadowMultiplier: small,
  rtcTimeoffset: fc.constant(''),
  xsdata,
});
/** Bodies about VM `v`, with values from small pools so that events meet the same records and often change nothing. */
const bodyOf = (v: string): fc.Arbitrary<EventBody> => fc.oneof({ arbitrary: frequent(v), weight: 1 }, { arbitrary: anyBody(v), weight: 1 });

const MIGRATE = { kind: 'VM.migrate', url: 'xenops://h2', destination: 'h2', vdiMap: [], vifMapJson: '{}', pciMapJson: '{}' } as const;

/** Bodies that create what the others change, and their commonest changes: weighted up, or most events would find nothing to change. */
const frequent = (v: string): fc.Arbitrary<EventBody> =>
  fc.oneof(
    fc.constant({ type: 'VmAdded', vmId: v, config: testVmConfig(v) }),
    fc.record({ type: fc.constant('TaskCreated'), vmId: fc.constant(v), operation: fc.constant({ kind: 'VM.start', paused: false, unpause: false }), host: fc.constant('h1'), ctimeMs: small }),
    record.map((r) => ({ type: 'DomainCreated', vmId: v, domid: 1, host: 'h1', startTime: 0, consoles: [], ...r })),
    fc.record({ kind, dev, n: small }).map(({ kind, dev, n }) => ({ type: 'DeviceAdded', vmId: v, device: { kind, config: { id: [v, dev], n } } })),
    fc.record({ type: fc.constant('DevicePlugged'), vmId: fc.constant(v), kind, dev, diskNumber: small }, { requiredKeys: ['type', 'vmId', 'kind', 'dev'] }),
    fc.record({ type: fc.constant('DeviceUnplugged'), vmId: fc.constant(v), kind, dev }),
    fc.record({ type: fc.constant('TaskStarted'), taskId, startedMs: small }),
    fc.record({ type: fc.constant('TaskCompleted'), taskId, duration: small, resultJson: fc.constantFrom('', '1'), cancelPointsSeen: small }),
  ) as fc.Arbitrary<EventBody>;

const anyBody = (v: string): fc.Arbitrary<EventBody> =>
  fc.oneof(
    fc.constant({ type: 'VmAdded', vmId: v, config: testVmConfig(v) }),
    fc.constant({ type: 'VmRemoved', vmId: v }),
    fc.constant({ type: 'GuestModeChanged', vmId: v, mode: 'normal' }),
    fc.record({ type: fc.constant('VmOwnerChanged'), vmId: fc.constant(v), host: fc.constantFrom('h1', 'h2'), previousHost: fc.constant('') }),
    fc.record({ type: fc.constant('TaskCreated'), vmId: fc.constant(v), operation: fc.constant({ kind: 'VM.start', paused: false, unpause: false }), host: fc.constant('h1'), ctimeMs: small }),
    fc.record({ type: fc.constant('TaskStarted'), taskId, startedMs: small }),
    // Migrations (§7.8): the task keeps the power state it started from; the switch-over moves it and the queue; the destination takes it over.
    fc.record({ type: fc.constant('TaskCreated'), vmId: fc.constant(v), operation: fc.constant(MIGRATE), host: fc.constant('h1'), ctimeMs: small }),
    fc.record({ type: fc.constant('VmOwnerChanged'), vmId: fc.constant(v), host: fc.constantFrom('h1', 'h2'), previousHost: fc.constant('h1'), migration: fc.record({ taskId, progress: fc.constantFrom(0, 0.5) }) }),
    fc.record({ type: fc.constant('MigrationReceived'), vmId: fc.constant(v), taskId }),
    fc.record({ type: fc.constant('TaskProgressed'), taskId, progress: fc.constantFrom(0, 0.5), cancelPointsSeen: small, cancellable: bool, atom: fc.constant('') }),
    fc.record({ type: fc.constant('TaskCompleted'), taskId, duration: small, resultJson: fc.constantFrom('', '1'), cancelPointsSeen: small }),
    fc.record({ type: fc.constant('TaskFailed'), taskId, error: fc.constant(['Internal_error', 'x']), cancelPointsSeen: small, duration: small }),
    fc.record({ type: fc.constant('TaskDestroyed'), taskId }),
    fc.record({ type: fc.constant('TaskCancelRequested'), taskId }),
    fc.record({ type: fc.constant('TaskDestroyOnFinishRequested'), taskId }),
    record.map((r) => ({ type: 'DomainCreated', vmId: v, domid: 1, host: 'h1', startTime: 0, consoles: [], ...r })),
    ...(['DomainBuilt', 'DeviceModelCreated', 'DeviceModelDestroyed', 'DomainPaused', 'DomainUnpaused', 'DomainMarkedSurvivable', 'DomainDestroyed', 'VmRefreshed'] as const).map(
      (type) => fc.constant({ type, vmId: v }),
    ),
    fc.record({ type: fc.constant('DomainShutdownAcknowledged'), vmId: fc.constant(v), reason: fc.constantFrom('poweroff', 'reboot') }),
    fc.record({ type: fc.constant('DomainVcpusSet'), vmId: fc.constant(v), vcpus: small }),
    fc.record({ type: fc.constant('DomainShadowMultiplierSet'), vmId: fc.constant(v), multiplier: small }),
    fc.record({ type: fc.constant('DomainMemoryRangeSet'), vmId: fc.constant(v), minimum: small, maximum: small }),
    fc.record({ type: fc.constant('DomainXsdataSet'), vmId: fc.constant(v), xsdata }),
    fc.record({ type: fc.constant('SuspendImageSaved'), vmId: fc.constant(v), image: record.map((r) => ({ disk: ['Local', 'd'], record: r })) }),
    fc.record({ type: fc.constant('SuspendImageDropped'), vmId: fc.constant(v), reason: fc.constant('') }),
    fc.record({ type: fc.constant('DomainRestored'), vmId: fc.constant(v), record }),
    fc.constant({ type: 'GuestActionRequested', vmId: v, action: 'reboot' }),
    fc.constant({ type: 'HostSettingChanged', hostId: 'h1', key: 'k', value: 1 }),
    fc.constant({ type: 'CancelTriggerSet', dbg: 'd', point: 1 }),
    fc.record({ type: fc.constant('CancelTriggerUsed'), dbg: fc.constant('d'), taskId }),
    fc.record({ type: fc.constantFrom('DeviceAdded', 'DeviceConfigChanged'), vmId: fc.constant(v), reason: fc.constant(''), kind, dev, n: small }).map(
      ({ type, kind, dev, n }) => ({ type, vmId: v, reason: '', device: { kind, config: { id: [v, dev], n } } }),
    ),
    fc.record({ type: fc.constant('DeviceRemoved'), vmId: fc.constant(v), kind, dev }),
    fc.record({ type: fc.constant('DeviceActiveSet'), vmId: fc.constant(v), kind, dev, active: bool }),
    fc.record({ type: fc.constant('DevicePlugged'), vmId: fc.constant(v), kind, dev, diskNumber: small }, { requiredKeys: ['type', 'vmId', 'kind', 'dev'] }),
    fc.record({ type: fc.constant('DeviceUnplugged'), vmId: fc.constant(v), kind, dev }),
    fc.record({ type: fc.constant('BarrierInjected'), barrierId: small, vmId: fc.constant(v), entries: fc.constant([]) }),
    fc.record({ type: fc.constant('BarrierRemoved'), barrierId: small }),
  ) as fc.Arbitrary<EventBody>;

/** One message of a VM's stream: a few events. */
const message = vmId.chain((v) => fc.record({ vm: fc.constant(v), bodies: fc.array(bodyOf(v), { minLength: 1, maxLength: 4 }) }));
const log = fc.array(message, { minLength: 30, maxLength: 80 });

const EVERY_TYPE: ReadonlyArray<EventBody['type']> = [
  'VmAdded', 'VmRemoved', 'GuestModeChanged', 'VmOwnerChanged', 'MigrationReceived', 'TaskCreated', 'TaskStarted', 'TaskProgressed', 'TaskCompleted', 'TaskFailed',
  'TaskDestroyed', 'TaskCancelRequested', 'DomainCreated', 'DomainBuilt', 'DeviceModelCreated', 'DeviceModelDestroyed', 'DomainPaused',
  'DomainUnpaused', 'DomainMarkedSurvivable', 'DomainDestroyed', 'DomainShutdownAcknowledged', 'DomainVcpusSet', 'DomainShadowMultiplierSet',
  'DomainMemoryRangeSet', 'DomainXsdataSet', 'SuspendImageSaved', 'SuspendImageDropped', 'DomainRestored', 'GuestActionRequested',
  'TaskDestroyOnFinishRequested', 'HostSettingChanged', 'CancelTriggerSet', 'CancelTriggerUsed', 'DeviceAdded', 'DeviceConfigChanged',
  'DeviceRemoved', 'DeviceActiveSet', 'DevicePlugged', 'DeviceUnplugged', 'BarrierInjected', 'BarrierRemoved', 'VmRefreshed',
];

/** Which parts of a record an evolve shared with the record before it (true: the same object). */
function sharing(before: VmAggregate, after: VmAggregate): Record<string, boolean> {
  const out: Record<string, boolean> = { vm: before === after };
  for (const k of ['config', 'domain', 'suspendImage', 'running', 'queue', 'devices'] as const) out[k] = before[k] === after[k];
  for (const k of DEVICE_KINDS) {
    out[`devices.${k}`] = before.devices[k] === after.devices[k];
    for (const d of DEVS) out[`devices.${k}.${d}`] = before.devices[k].get(d) === after.devices[k].get(d);
  }
  return out;
}

/** The two folds side by side, checked at every step. */
class SideBySide {
  private readonly vms = { fast: new Map<string, VmAggregate>(), immer: new Map<string, VmAggregate>() };
  private readonly tasks = { fast: new Map<string, TaskRecord>(), immer: new Map<string, TaskRecord>() };
  readonly seen = new Set<EventBody['type']>();
  signals = 0;

  /** A message folded at once (as `foldMessage` and the actors do), then event by event (as the read model's steps do). */
  message(seq: number, vm: string, bodies: readonly EventBody[]): void {
    const events: LogEvent[] = bodies.map((body) => ({ seq, audit: { dbg: `d${seq}`, timeMs: 0, host: 'h1', actor: `vm/${vm}` }, body }));
    const fastBefore = this.vms.fast.get(vm) ?? emptyVm(vm);
    const immerBefore = this.vms.immer.get(vm) ?? emptyVm(vm);
    const whole = { fast: evolveVmAll(fastBefore, events), immer: immerEvolveVmAll(immerBefore, events) };
    expect(whole.fast).toEqual(whole.immer);
    expect(sharing(fastBefore, whole.fast)).toEqual(sharing(immerBefore, whole.immer));

    let fast = fastBefore;
    let immer = immerBefore;
    for (const event of events) {
      this.seen.add(event.body.type);
      const next = { fast: evolveVmAll(fast, [event]), immer: immerEvolveVmAll(immer, [event]) };
      expect(next.fast, event.body.type).toEqual(next.immer);
      expect(sharing(fast, next.fast), event.body.type).toEqual(sharing(immer, next.immer));
      const id = taskIdOf(event);
      const task = { fast: id === undefined ? undefined : this.tasks.fast.get(id), immer: id === undefined ? undefined : this.tasks.immer.get(id) };
      const taskNext = { fast: evolveTask(task.fast, event), immer: immerEvolveTask(task.immer, event) };
      expect(taskNext.fast, event.body.type).toEqual(taskNext.immer);
      expect(taskNext.fast === task.fast, event.body.type).toBe(taskNext.immer === task.immer);
      const effects = {
        fast: dynamicIdsOf(event, { vmBefore: fast, vmAfter: next.fast, taskBefore: task.fast, taskAfter: taskNext.fast }),
        immer: dynamicIdsOf(event, { vmBefore: immer, vmAfter: next.immer, taskBefore: task.immer, taskAfter: taskNext.immer }),
      };
      expect(effects.fast, event.body.type).toEqual(effects.immer);
      this.signals += effects.fast.signals.length + effects.fast.removes.length;
      if (id !== undefined) {
        for (const side of ['fast', 'immer'] as const) {
          if (taskNext[side]) this.tasks[side].set(id, taskNext[side]);
          else this.tasks[side].delete(id);
        }
      }
      fast = next.fast;
      immer = next.immer;
    }
    expect(fast).toEqual(whole.fast);
    this.vms.fast.set(vm, whole.fast);
    this.vms.immer.set(vm, whole.immer);
    expect(this.tasks.fast).toEqual(this.tasks.immer);
  }
}

describe('the immer-free fold', () => {
  it('folds generated logs with every event type exactly as the immer fold did', () => {
    const seen = new Set<EventBody['type']>();
    let signals = 0;
    fc.assert(
      fc.property(log, (messages) => {
        const folds = new SideBySide();
        messages.forEach((m, i) => folds.message(i + 1, m.vm, m.bodies));
        for (const t of folds.seen) seen.add(t);
        signals += folds.signals;
      }),
      { numRuns: 150, seed: 20261203 },
    );
    // The generator reached every event type, and the events did change things the diffs report.
    expect([...EVERY_TYPE].filter((t) => !seen.has(t))).toEqual([]);
    expect(signals).toBeGreaterThan(5_000);
  });

  it('keeps the records an event does not change, as the immer fold did', () => {
    const audit = { dbg: '', timeMs: 0, host: '', actor: '' };
    const created: EventBody = { type: 'DomainCreated', vmId: 'a', domid: 1, host: 'h1', startTime: 0, consoles: [], hvm: true, domainType: 'Domain_HVM', vcpus: 1, memoryTarget: 1, memoryLimit: 1, shadowMultiplier: 1, rtcTimeoffset: '', xsdata: [] };
    const vm = evolveVmAll(emptyVm('a'), [{ seq: 1, audit, body: created }]);
    // Paused again: a new version, the same domain record (so no Vm signal).
    const again = evolveVmAll(vm, [{ seq: 2, audit, body: { type: 'DomainPaused', vmId: 'a' } }]);
    expect(again).not.toBe(vm);
    expect(again.domain).toBe(vm.domain);
    expect(dynamicIdsOf({ seq: 2, audit, body: { type: 'DomainPaused', vmId: 'a' } }, { vmBefore: vm, vmAfter: again }).signals).toEqual([]);
  });
});
