import { current, enableMapSet, isDraft, produce, setAutoFreeze, type Draft } from 'immer';
import type { PowerState } from '../errors.js';
import type { Console, DomainRecord, EventBody, LogEvent, SuspendImage } from '../events/event.js';
import { dictMerge } from '../idl/dict.js';
import type { VmConfig } from '../idl/index.js';
import { emptyDevices, type DeviceEntry, type VmDevices } from './devices.js';
import type { VmQuarantine } from './log-damage.js';
import type { Operation } from './operation.js';

// Device tables are Maps (device names are arbitrary strings, never object keys).
enableMapSet();
// Folded state is never mutated outside `produce` (a rule the reviewers and `verify` hold us to);
// deep-freezing every new record costs the fold almost half its time (profiled on a replay).
setAutoFreeze(false);

/**
 * The simulator's record of a VM's running incarnation (API.md §8.1): what a suspend image
 * carries (DomainRecord) plus the run-time flags of this incarnation.
 */
export interface Domain extends DomainRecord {
  readonly domid: number;
  readonly host: string;
  readonly paused: boolean;
  readonly built: boolean;
  readonly deviceModel: boolean;
  /** Cleared by VM_mark_survivable; until then a failed start tears the domain down (§7.3). */
  readonly survivable: boolean;
  readonly consoles: readonly Console[];
  readonly startTime: number;
  readonly shutdownAcknowledged?: 'poweroff' | 'reboot';
}

export interface QueuedTask {
  readonly taskId: string;
  readonly operation: Operation;
  readonly dbg: string;
  readonly host: string;
  /** Task.destroy_on_finish was called while the task was queued or running. */
  readonly destroyOnFinish?: boolean;
  /** A running VM.migrate (§7.8): the power state it keeps, and where it stands. */
  readonly migration?: MigrationProgress;
}

export interface MigrationProgress {
  /** The domain was Paused when the migration started (else Running): `VM.stat` reports that throughout. */
  readonly wasPaused: boolean;
  /** Passed to the destination (`running.host`) and not taken over by it yet (`MigrationReceived`). */
  readonly handedOver: boolean;
  /** How much of the task was done at the switch-over. */
  readonly progress: number;
}

/** One VM: its configuration, its domain and its operation queue. A pure fold of its stream. */
export interface VmAggregate {
  readonly id: string;
  /** Undefined when the VM is not registered (never added, or removed). */
  readonly config?: VmConfig;
  readonly domain?: Domain;
  /** Set by VM_save, consumed by a resume reaching VM_mark_survivable, dropped by a shutdown. */
  readonly suspendImage?: SuspendImage;
  /**
   * The host whose agent last claimed the VM (`VmOwnerChanged`): only it writes the stream. While
   * the VM has nothing running anywhere it is free (`ownerOf`) and any agent may claim it.
   */
  readonly owner?: string;
  readonly devices: VmDevices;
  /** Accepted tasks that have not started, in arrival order (FIFO, §7.2). */
  readonly queue: readonly QueuedTask[];
  /** The task executing now, if any. */
  readonly running?: QueuedTask;
  /** Seq of the last message of the VM's stream folded into this state (0: none). */
  readonly version: number;
  /** Set when a message of the VM's stream could not be read: the stream is folded no further (log-damage.ts). */
  readonly quarantine?: VmQuarantine;
}

export function emptyVm(id: string): VmAggregate {
  return { id, devices: emptyDevices(), queue: [], version: 0 };
}

/** Folds one event of the VM's own stream. Pure; events of other VMs are ignored. */
export function evolveVm(state: VmAggregate, event: LogEvent): VmAggregate {
  return evolveVmAll(state, [event]);
}

/** Folds the events of one message (all of one seq) in a single immutable update. */
export function evolveVmAll(state: VmAggregate, events: readonly LogEvent[]): VmAggregate {
  // Past a damaged message nobody knows what the stream did: the VM stays as it was before it.
  if (events.length === 0 || state.quarantine) return state;
  const seq = events[events.length - 1]!.seq;
  if (events.every((e) => VM_NEUTRAL.has(e.body.type))) return state.version === seq ? state : { ...state, version: seq };
  return produce(state, (draft) => {
    for (const event of events) applyVmEvent(draft as Mutable<VmAggregate>, event.body, String(event.seq), event.audit.dbg);
    (draft as Mutable<VmAggregate>).version = seq;
  });
}

/**
 * Events that leave a VM aggregate as it is (only its version moves): the fold skips immer for
 * them, and `applyVmEvent` has no case for them (a test checks the two agree).
 */
export const VM_NEUTRAL: ReadonlySet<EventBody['type']> = new Set<EventBody['type']>([
  'GuestActionRequested',
  // Old logs' simulator guest modes: the simulator keeps them now.
  'GuestModeChanged',
  'HostSettingChanged',
  'CancelTriggerSet',
  'CancelTriggerUsed',
  'TaskProgressed',
  'TaskDestroyed',
  'TaskCancelRequested',
  'BarrierInjected',
  'BarrierRemoved',
  'VmRefreshed',
]);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** immer's `current` for a value read from a draft: a plain snapshot of it. */
const currentOf = <T>(draft: T): T => current(draft as Draft<T>) as T;
/** A plain copy of a value that may be a draft, or a plain object set earlier in the same update. */
const plainOf = <T>(value: T): T => (isDraft(value) ? currentOf(value) : value);

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
      // A migration's switch-over: its running task goes with the VM to the destination.
      if (body.migration && vm.running?.taskId === body.migration.taskId) {
        const running = plainOf(vm.running);
        vm.running = { ...running, host: body.host, migration: { wasPaused: running.migration?.wasPaused ?? false, handedOver: true, progress: body.migration.progress } };
        // The tasks queued behind it go too: the destination runs them (and fails them if it restarts mid-way).
        if (vm.queue.length > 0) vm.queue = plainOf(vm.queue).map((t) => ({ ...t, host: body.host }));
      }
      return;
    case 'MigrationReceived':
      if (vm.running?.taskId === body.taskId && vm.running.migration) {
        const running = plainOf(vm.running);
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
        // A migration keeps the power state it started from (§7.8), whatever its steps do to the domain.
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
      table.set(dev, existing ? { ...existing, config: body.device.config } : { config: body.device.config, plugged: false, active: false });
      return;
    }
    case 'DeviceRemoved':
      (vm.devices[body.kind] as Map<string, unknown>).delete(body.dev);
      return;
    case 'DeviceActiveSet': {
      const table = vm.devices[body.kind] as Map<string, DeviceEntry<unknown>>;
      const entry = table.get(body.dev);
      if (entry) table.set(body.dev, { ...entry, active: body.active });
      return;
    }
    case 'DevicePlugged': {
      const table = vm.devices[body.kind] as Map<string, DeviceEntry<unknown>>;
      const entry = table.get(body.dev);
      if (entry) {
        table.set(body.dev, { ...entry, plugged: true, ...(body.diskNumber === undefined ? {} : { diskNumber: body.diskNumber }) });
      }
      return;
    }
    case 'DeviceUnplugged': {
      const table = vm.devices[body.kind] as Map<string, DeviceEntry<unknown>>;
      const entry = table.get(body.dev);
      if (entry) table.set(body.dev, { config: entry.config, plugged: false, active: entry.active });
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

/**
 * Power state as API.md §8.1 defines it for the simulator. While a reboot runs (API or a guest
 * `Start` action) the VM reports Running throughout, even between teardown and the new domain
 * (§4.3).
 */
export function powerStateOf(vm: VmAggregate): PowerState {
  if (vm.running && isRebootInProgress(vm.running.operation)) return 'Running';
  // A migration reports the state it started from (§7.8); one refused at its start (no domain) did not start.
  const migration = vm.running?.migration;
  if (migration) return migration.wasPaused ? 'Paused' : 'Running';
  return physicalPowerStateOf(vm);
}

/** The power state of the domain itself, which operations' preconditions check. */
export function physicalPowerStateOf(vm: VmAggregate): PowerState {
  if (!vm.domain) return vm.suspendImage ? 'Suspended' : 'Halted';
  return vm.domain.paused ? 'Paused' : 'Running';
}

function isRebootInProgress(op: Operation): boolean {
  return op.kind === 'VM.reboot' || (op.kind === 'VM.guest_action' && op.actions.includes('Start'));
}

/** Ids of the VMs an event touches (for routing events of shared streams). */
export function vmIdOf(body: EventBody): string | undefined {
  return 'vmId' in body ? body.vmId : undefined;
}
