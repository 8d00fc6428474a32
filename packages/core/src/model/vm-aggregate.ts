import { produce } from 'immer';
import type { PowerState } from '../errors.js';
import type { Console, DomainType, EventBody, GuestMode, LogEvent } from '../events/event.js';
import type { VmConfig } from '../idl/index.js';
import type { Operation } from './operation.js';

/** The simulator's record of a VM's running incarnation (API.md §8.1). */
export interface Domain {
  readonly domid: number;
  readonly host: string;
  readonly paused: boolean;
  readonly built: boolean;
  readonly deviceModel: boolean;
  /** Cleared by VM_mark_survivable; until then a failed start tears the domain down (§7.3). */
  readonly survivable: boolean;
  readonly hvm: boolean;
  readonly domainType: DomainType;
  readonly vcpus: number;
  readonly memoryTarget: number;
  readonly memoryLimit: number;
  readonly shadowMultiplier: number;
  readonly rtcTimeoffset: string;
  readonly xsdata: ReadonlyArray<readonly [string, string]>;
  readonly consoles: readonly Console[];
  readonly startTime: number;
  readonly shutdownAcknowledged?: 'poweroff' | 'reboot';
}

export interface QueuedTask {
  readonly taskId: string;
  readonly operation: Operation;
  readonly dbg: string;
  readonly host: string;
}

/** One VM: its configuration, its domain and its operation queue. A pure fold of its stream. */
export interface VmAggregate {
  readonly id: string;
  /** Undefined when the VM is not registered (never added, or removed). */
  readonly config?: VmConfig;
  readonly domain?: Domain;
  readonly guestMode: GuestMode;
  /** Accepted tasks that have not started, in arrival order (FIFO, §7.2). */
  readonly queue: readonly QueuedTask[];
  /** The task executing now, if any. */
  readonly running?: QueuedTask;
  /** Seq of the last message of the VM's stream folded into this state (0: none). */
  readonly version: number;
}

export function emptyVm(id: string): VmAggregate {
  return { id, guestMode: 'normal', queue: [], version: 0 };
}

/** Folds one event of the VM's own stream. Pure; events of other VMs are ignored. */
export function evolveVm(state: VmAggregate, event: LogEvent): VmAggregate {
  const next = produce(state, (draft) => {
    applyVmEvent(draft as Mutable<VmAggregate>, event.body, String(event.seq), event.audit.dbg);
  });
  return next.version === event.seq ? next : { ...next, version: event.seq };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function applyVmEvent(vm: Mutable<VmAggregate>, body: EventBody, seq: string, dbg: string): void {
  const domain = vm.domain as Mutable<Domain> | undefined;
  switch (body.type) {
    case 'VmAdded':
      vm.config = body.config;
      return;
    case 'VmRemoved':
      delete vm.config;
      delete vm.domain;
      vm.guestMode = 'normal';
      return;
    case 'GuestModeChanged':
      vm.guestMode = body.mode;
      return;
    case 'TaskCreated':
      vm.queue = [...vm.queue, { taskId: seq, operation: body.operation, dbg, host: body.host }];
      return;
    case 'TaskStarted': {
      const task = vm.queue.find((t) => t.taskId === body.taskId);
      if (task) {
        vm.queue = vm.queue.filter((t) => t.taskId !== body.taskId);
        vm.running = task;
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
      return;
    case 'TaskProgressed':
    case 'TaskDestroyed':
    case 'TaskCancelRequested':
    case 'BarrierInjected':
    case 'BarrierRemoved':
    case 'VmRefreshed':
      return;
  }
}

/** Power state as API.md §8.1 defines it for the simulator. */
export function powerStateOf(vm: VmAggregate): PowerState {
  if (!vm.domain) return 'Halted';
  return vm.domain.paused ? 'Paused' : 'Running';
}

/** Ids of the VMs an event touches (for routing events of shared streams). */
export function vmIdOf(body: EventBody): string | undefined {
  return 'vmId' in body ? body.vmId : undefined;
}
