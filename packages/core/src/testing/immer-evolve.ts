/**
 * The fold of VMs and tasks as it was written with immer (before issue 17 item 5), kept as the
 * reference the immer-free fold is checked against (evolve-equivalence.test.ts): the same events
 * must give deep-equal records, and the same records shared (or not) with the state before, which
 * is what the change feed's and the UPDATES set's diffs see.
 */
import { current, enableMapSet, isDraft, produce, setAutoFreeze, type Draft } from 'immer';
import type { EventBody, LogEvent } from '../events/event.js';
import { dictMerge } from '../idl/dict.js';
import { emptyDevices, type DeviceEntry, type DeviceKind, type VmDevices } from '../model/devices.js';
import type { TaskRecord } from '../model/task-record.js';
import { VM_NEUTRAL, type Domain, type QueuedTask, type VmAggregate } from '../model/vm-aggregate.js';

enableMapSet();
setAutoFreeze(false);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * immer's `current` for a value read from a draft: a plain snapshot of it. The immer fold called
 * `current` on any queue, and threw when an earlier event of the same message had assigned it a
 * plain array (a queued task ended, then another started): that message was then reported as
 * damage. The reference takes the plain array as it is, which is what the fold meant.
 */
const currentOf = <T>(value: T): T => (isDraft(value) ? (current(value as Draft<T>) as T) : value);

export function immerEvolveVmAll(state: VmAggregate, events: readonly LogEvent[]): VmAggregate {
  if (events.length === 0 || state.quarantine) return state;
  const seq = events[events.length - 1]!.seq;
  if (events.every((e) => VM_NEUTRAL.has(e.body.type))) return state.version === seq ? state : { ...state, version: seq };
  return produce(state, (draft) => {
    for (const event of events) applyVmEvent(draft as Mutable<VmAggregate>, event.body, String(event.seq), event.audit.dbg);
    (draft as Mutable<VmAggregate>).version = seq;
  });
}

/**
 * A device table to write. The immer fold wrote through `vm.devices[kind]` directly, which is a
 * draft unless an earlier event of the same message assigned `vm.devices` (VmRemoved gives the
 * shared empty tables): it then wrote into the tables every VM without devices shares. The
 * reference copies such a table first, which is what the fold meant.
 */
function writable(vm: Mutable<VmAggregate>, kind: DeviceKind): Map<string, DeviceEntry<unknown>> {
  const table = vm.devices[kind] as Map<string, DeviceEntry<unknown>>;
  if (isDraft(table)) return table;
  const copy = new Map(table);
  vm.devices = { ...vm.devices, [kind]: copy } as VmDevices;
  return copy;
}

function applyVmEvent(vm: Mutable<VmAggregate>, body: EventBody, seq: string, dbg: string): void {
  const domain = vm.domain as Mutable<Domain> | undefined;
  switch (body.type) {
    case 'VmAdded':
      vm.config = body.config;
      return;
    case 'VmRemoved':
      delete vm.config;
      delete vm.domain;
      delete vm.suspendImage;
      vm.devices = emptyDevices();
      return;
    case 'VmOwnerChanged':
      vm.owner = body.host;
      if (body.migration && vm.running?.taskId === body.migration.taskId) {
        const running = currentOf(vm.running);
        vm.running = { ...running, host: body.host, migration: { wasPaused: running.migration?.wasPaused ?? false, handedOver: true, progress: body.migration.progress } };
        if (vm.queue.length > 0) vm.queue = currentOf(vm.queue).map((t) => ({ ...t, host: body.host }));
      }
      return;
    case 'MigrationReceived':
      if (vm.running?.taskId === body.taskId && vm.running.migration) {
        const running = currentOf(vm.running);
        vm.running = { ...running, migration: { ...running.migration!, handedOver: false } };
      }
      return;
    case 'TaskCreated':
      // Push on the draft: spreading it would make immer proxy and walk every queued task.
      (vm.queue as QueuedTask[]).push({ taskId: seq, operation: body.operation, dbg, host: body.host });
      return;
    case 'TaskStarted': {
      // Searched in a plain copy: reading queued tasks through the draft would proxy each one and
      // make `running` a draft that immer must then resolve (a third of a replay's fold time).
      const queue = currentOf(vm.queue);
      const task = queue.find((t) => t.taskId === body.taskId);
      if (task) {
        vm.queue = queue.filter((t) => t !== task);
        vm.running = task.operation.kind === 'VM.migrate' ? { ...task, migration: { wasPaused: vm.domain?.paused ?? false, handedOver: false, progress: 0 } } : task;
      }
      return;
    }
    case 'TaskCompleted':
    case 'TaskFailed':
      if (vm.running?.taskId === body.taskId) delete vm.running;
      else vm.queue = vm.queue.filter((t) => t.taskId !== body.taskId);
      return;
    case 'DomainCreated':
      vm.domain = {
        domid: body.domid,
        host: body.host,
        paused: true,
        built: false,
        deviceModel: false,
        survivable: false,
        hvm: body.hvm,
        domainType: body.domainType,
        vcpus: body.vcpus,
        memoryTarget: body.memoryTarget,
        memoryLimit: body.memoryLimit,
        shadowMultiplier: body.shadowMultiplier,
        rtcTimeoffset: body.rtcTimeoffset,
        xsdata: body.xsdata,
        consoles: body.consoles,
        startTime: body.startTime,
      };
      return;
    case 'DomainBuilt':
      if (domain) domain.built = true;
      return;
    case 'DeviceModelCreated':
      if (domain) domain.deviceModel = true;
      return;
    case 'DeviceModelDestroyed':
      if (domain) domain.deviceModel = false;
      return;
    case 'DomainPaused':
      if (domain) domain.paused = true;
      return;
    case 'DomainUnpaused':
      if (domain) domain.paused = false;
      return;
    case 'DomainMarkedSurvivable':
      if (domain) domain.survivable = true;
      return;
    case 'DomainShutdownAcknowledged':
      if (domain) domain.shutdownAcknowledged = body.reason;
      return;
    case 'DomainDestroyed':
      delete vm.domain;
      // Destroying the domain unplugs whatever was still plugged (§7.3).
      for (const table of Object.values(vm.devices) as Array<Map<string, DeviceEntry<unknown>>>) {
        if (table.size === 0) continue; // most VMs have no device of most kinds: skip immer's Map iteration
        for (const [dev, entry] of table) if (entry.plugged) table.set(dev, { config: entry.config, plugged: false, active: entry.active });
      }
      return;
    case 'DeviceAdded':
    case 'DeviceConfigChanged': {
      const table = vm.devices[body.device.kind] as Map<string, DeviceEntry<unknown>>;
      const dev = body.device.config.id[1];
      const existing = table.get(dev);
      // Overwriting a device keeps its run-time flags: an add never plugs or unplugs (§7.6).
      writable(vm, body.device.kind).set(dev, existing ? { ...existing, config: body.device.config } : { config: body.device.config, plugged: false, active: false });
      return;
    }
    case 'DeviceRemoved':
      if ((vm.devices[body.kind] as Map<string, unknown>).has(body.dev)) writable(vm, body.kind).delete(body.dev);
      return;
    case 'DeviceActiveSet': {
      const table = vm.devices[body.kind] as Map<string, DeviceEntry<unknown>>;
      const entry = table.get(body.dev);
      if (entry) writable(vm, body.kind).set(body.dev, { ...entry, active: body.active });
      return;
    }
    case 'DevicePlugged': {
      const table = vm.devices[body.kind] as Map<string, DeviceEntry<unknown>>;
      const entry = table.get(body.dev);
      if (entry) {
        writable(vm, body.kind).set(body.dev, { ...entry, plugged: true, ...(body.diskNumber === undefined ? {} : { diskNumber: body.diskNumber }) });
      }
      return;
    }
    case 'DeviceUnplugged': {
      const table = vm.devices[body.kind] as Map<string, DeviceEntry<unknown>>;
      const entry = table.get(body.dev);
      if (entry) writable(vm, body.kind).set(body.dev, { config: entry.config, plugged: false, active: entry.active });
      return;
    }
    case 'DomainVcpusSet':
      if (domain) domain.vcpus = body.vcpus;
      return;
    case 'DomainShadowMultiplierSet':
      if (domain) domain.shadowMultiplier = body.multiplier;
      return;
    case 'DomainMemoryRangeSet':
      if (domain) domain.memoryTarget = body.maximum;
      return;
    case 'DomainXsdataSet':
      if (domain) domain.xsdata = dictMerge(domain.xsdata, body.xsdata);
      return;
    case 'SuspendImageSaved':
      vm.suspendImage = body.image;
      return;
    case 'SuspendImageDropped':
      delete vm.suspendImage;
      return;
    case 'DomainRestored':
      if (domain) {
        domain.built = true;
        domain.vcpus = body.record.vcpus;
        domain.memoryTarget = body.record.memoryTarget;
        domain.shadowMultiplier = body.record.shadowMultiplier;
        domain.xsdata = body.record.xsdata;
      }
      return;
    case 'TaskDestroyOnFinishRequested':
      if (vm.running?.taskId === body.taskId) vm.running = { ...vm.running, destroyOnFinish: true };
      vm.queue = vm.queue.map((t) => (t.taskId === body.taskId ? { ...t, destroyOnFinish: true } : t));
      return;
    default:
      // The VM_NEUTRAL events: nothing of the aggregate changes (the fold skips them before here).
      return;
  }
}

export function immerEvolveTask(task: TaskRecord | undefined, event: LogEvent): TaskRecord | undefined {
  const { body, seq, audit } = event;
  if (body.type === 'TaskCreated') {
    return {
      id: String(seq),
      vmId: body.vmId,
      dbg: audit.dbg,
      ctimeMs: body.ctimeMs,
      host: body.host,
      operation: body.operation,
      status: 'pending',
      progress: 0,
      cancelPointsSeen: 0,
      cancellable: true,
    };
  }
  if (!task) return undefined;
  switch (body.type) {
    case 'TaskStarted':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.startedMs = body.startedMs;
      });
    case 'TaskProgressed':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.progress = body.progress;
        t.cancelPointsSeen = body.cancelPointsSeen;
        t.cancellable = body.cancellable;
      });
    case 'TaskCompleted':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.status = 'completed';
        t.progress = 1;
        t.duration = body.duration;
        t.resultJson = body.resultJson;
        t.cancelPointsSeen = body.cancelPointsSeen;
        t.endedSeq = seq;
      });
    case 'TaskFailed':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.status = 'failed';
        t.error = body.error;
        t.duration = body.duration;
        t.cancelPointsSeen = body.cancelPointsSeen;
        t.endedSeq = seq;
      });
    case 'TaskDestroyed':
      return undefined;
    default:
      return task;
  }
}

