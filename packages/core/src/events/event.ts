import type { ErrorValue } from '../errors.js';
import type { DynamicId, VmConfig } from '../idl/index.js';
import type { DeviceConfig, DeviceKind } from '../model/devices.js';
import type { Operation } from '../model/operation.js';
import type { Audit } from './audit.js';

/** Console of a simulated domain (Vm.state `consoles`). */
export interface Console {
  readonly protocol: 'Rfb' | 'Vt100';
  readonly port: number;
  readonly path: string;
}

export type DomainType = 'Domain_HVM' | 'Domain_PV' | 'Domain_PVinPVH' | 'Domain_PVH' | 'Domain_undefined';

/** The facts of the log, in the past tense. Field names follow proto/xenops.proto. */
export type EventBody =
  | { readonly type: 'VmAdded'; readonly vmId: string; readonly config: VmConfig }
  | { readonly type: 'VmRemoved'; readonly vmId: string }
  /** Written by logs before issue 12 (the simulator's guest mode now lives in the simulator): decoded, folded to nothing. */
  | { readonly type: 'GuestModeChanged'; readonly vmId: string; readonly mode: GuestMode }
  /** The VM's owner changed: only `host`'s agent writes its stream from this event on (`previousHost` '' for none). */
  | {
      readonly type: 'VmOwnerChanged';
      readonly vmId: string;
      readonly host: string;
      readonly previousHost: string;
      /** A migration's switch-over (§7.8): its running task passes to `host` with the VM, `progress` of it done. */
      readonly migration?: { readonly taskId: string; readonly progress: number };
    }
  /** The destination of a migration took over its task (§7.8). */
  | { readonly type: 'MigrationReceived'; readonly vmId: string; readonly taskId: string }
  | {
      readonly type: 'TaskCreated';
      readonly vmId: string;
      readonly operation: Operation;
      readonly host: string;
      readonly ctimeMs: number;
      /** A placement's reason (API.md §9.7): why a VM no host owned was started or resumed on `host`. */
      readonly placement?: string;
    }
  | { readonly type: 'TaskStarted'; readonly taskId: string; readonly startedMs: number }
  | {
      readonly type: 'TaskProgressed';
      readonly taskId: string;
      readonly progress: number;
      readonly cancelPointsSeen: number;
      readonly cancellable: boolean;
      readonly atom: string;
    }
  | {
      readonly type: 'TaskCompleted';
      readonly taskId: string;
      readonly duration: number;
      /** JSON text of the result in the xenopsd encoding, '' for none. */
      readonly resultJson: string;
      readonly cancelPointsSeen: number;
    }
  | {
      readonly type: 'TaskFailed';
      readonly taskId: string;
      readonly error: ErrorValue;
      readonly cancelPointsSeen: number;
      readonly duration: number;
    }
  | { readonly type: 'TaskDestroyed'; readonly taskId: string }
  | { readonly type: 'TaskCancelRequested'; readonly taskId: string }
  | ({
      readonly type: 'DomainCreated';
      readonly vmId: string;
      readonly domid: number;
      readonly host: string;
      readonly startTime: number;
      readonly consoles: readonly Console[];
    } & DomainRecord)
  | { readonly type: 'DomainBuilt'; readonly vmId: string }
  | { readonly type: 'DeviceModelCreated'; readonly vmId: string }
  | { readonly type: 'DeviceModelDestroyed'; readonly vmId: string }
  | { readonly type: 'DomainPaused'; readonly vmId: string }
  | { readonly type: 'DomainUnpaused'; readonly vmId: string }
  | { readonly type: 'DomainMarkedSurvivable'; readonly vmId: string }
  | { readonly type: 'DomainDestroyed'; readonly vmId: string }
  | { readonly type: 'DomainShutdownAcknowledged'; readonly vmId: string; readonly reason: ShutdownReason }
  | { readonly type: 'DomainVcpusSet'; readonly vmId: string; readonly vcpus: number }
  | { readonly type: 'DomainShadowMultiplierSet'; readonly vmId: string; readonly multiplier: number }
  | { readonly type: 'DomainMemoryRangeSet'; readonly vmId: string; readonly minimum: number; readonly maximum: number }
  | { readonly type: 'DomainXsdataSet'; readonly vmId: string; readonly xsdata: ReadonlyArray<readonly [string, string]> }
  | { readonly type: 'SuspendImageSaved'; readonly vmId: string; readonly image: SuspendImage }
  | { readonly type: 'SuspendImageDropped'; readonly vmId: string; readonly reason: string }
  | { readonly type: 'DomainRestored'; readonly vmId: string; readonly record: DomainRecord }
  | { readonly type: 'GuestActionRequested'; readonly vmId: string; readonly action: GuestAction }
  | { readonly type: 'TaskDestroyOnFinishRequested'; readonly taskId: string }
  | { readonly type: 'HostSettingChanged'; readonly hostId: string; readonly key: string; readonly value: unknown }
  | { readonly type: 'CancelTriggerSet'; readonly dbg: string; readonly point: number }
  | { readonly type: 'CancelTriggerUsed'; readonly dbg: string; readonly taskId: string }
  | { readonly type: 'DeviceAdded'; readonly vmId: string; readonly device: DeviceConfig }
  | { readonly type: 'DeviceConfigChanged'; readonly vmId: string; readonly device: DeviceConfig; readonly reason: string }
  | { readonly type: 'DeviceRemoved'; readonly vmId: string; readonly kind: DeviceKind; readonly dev: string }
  | { readonly type: 'DeviceActiveSet'; readonly vmId: string; readonly kind: DeviceKind; readonly dev: string; readonly active: boolean }
  | { readonly type: 'DevicePlugged'; readonly vmId: string; readonly kind: DeviceKind; readonly dev: string; readonly diskNumber?: number }
  | { readonly type: 'DeviceUnplugged'; readonly vmId: string; readonly kind: DeviceKind; readonly dev: string }
  | {
      readonly type: 'BarrierInjected';
      readonly barrierId: number;
      readonly vmId: string;
      /** The update set's entries for the VM and its devices when the barrier was injected. */
      readonly entries: ReadonlyArray<{ readonly id: DynamicId; readonly seq: number }>;
    }
  | { readonly type: 'BarrierRemoved'; readonly barrierId: number }
  | { readonly type: 'VmRefreshed'; readonly vmId: string };

export type EventType = EventBody['type'];
export type EventOf<T extends EventType> = Extract<EventBody, { type: T }>;

export type GuestMode = 'normal' | 'ignore' | 'hang';
export type GuestAction = 'reboot' | 'halt' | 'crash' | 'suspend' | 'soft_reset';

/** What a simulated domain carries across a suspend (the content of a suspend image). */
export interface DomainRecord {
  readonly hvm: boolean;
  readonly domainType: DomainType;
  readonly vcpus: number;
  readonly memoryTarget: number;
  readonly memoryLimit: number;
  readonly shadowMultiplier: number;
  readonly rtcTimeoffset: string;
  readonly xsdata: ReadonlyArray<readonly [string, string]>;
}

/** A VM's suspend image: where it was written and what it holds. */
export interface SuspendImage {
  /** The suspend_vdi disk in the xenopsd encoding: `['Local', path]` or `['VDI', ref]`. */
  readonly disk: readonly [string, string];
  readonly record: DomainRecord;
}
export type ShutdownReason = 'poweroff' | 'reboot';

/** An event as read back from the log: body, audit fields, and the seq of its batch. */
export interface LogEvent {
  readonly seq: number;
  readonly audit: Audit;
  readonly body: EventBody;
}

/** Stream (aggregate) keys of the log. */
export const Streams = {
  vm: (vmId: string) => `vm/${vmId}`,
  task: (taskId: string) => `task/${taskId}`,
  /** Host-level facts written by the host's agent (settings, cancel triggers). */
  host: (hostId: string) => `host/${hostId}`,
  /** HOST.evacuate tasks (§9.7), written by the gateway that runs them. */
  evacuations: () => 'task/evacuations',
  /** UPDATES barriers (gateway-written). */
  barriers: () => 'updates/barriers',
} as const;
