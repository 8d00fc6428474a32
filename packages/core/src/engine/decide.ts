import { Errors, XenopsError, type ErrorValue } from '../errors.js';
import { IllFormedStringError, NestingLimitError, singleLine } from '../idl/wire-checks.js';
import type { Audit } from '../events/audit.js';
import type { PendingEvent } from '../events/codec.js';
import type { EventBody, GuestAction } from '../events/event.js';
import type { Command, HostCommand } from '../model/command.js';
import { deviceDneKey } from '../model/devices.js';
import { decodeMetadataJson, importEvents } from '../model/import-metadata.js';
import { quarantineError } from '../model/log-damage.js';
import { queueFull } from '../model/queue-limit.js';
import type { QueuedTask, VmAggregate } from '../model/vm-aggregate.js';
import type { Atom } from './atom.js';
import type { AtomStep } from './atom-semantics.js';
import { decideGuestEvent, decideReconcile } from './decide-guest.js';
import { decideAtomPerformed, decidePointOfNoReturn, decideReceiveMigration, decideRecover, decideStartTask, decideTaskFailed } from './decide-task.js';
import type { ObservedDomain, Observation } from './effect.js';
import { notOwnerError, ownerOf } from './ownership.js';
import type { Plan } from './plan.js';

/** An event written on behalf of the engine rather than the caller (audit dbg `internal:<reason>`). */
export interface InternalEvent {
  readonly internal: string;
  readonly body: EventBody;
}

/** An event of a task's execution (audit: the task's dbg, actor `task/<id>`). */
export interface TaskEvent {
  readonly task: QueuedTask;
  readonly body: EventBody;
}

export type DecidedEvent = EventBody | InternalEvent | TaskEvent;

/** An atom as it was carried out: how it was prepared, and what the backend observed if it acted. */
export interface PerformedAtom {
  readonly atom: Atom;
  readonly step: AtomStep;
  readonly observation?: Observation;
}

/**
 * What the engine itself asks a VM's decider, besides the commands of the bus: the steps of a
 * task's execution (run-task.ts), the recovery after a restart, what the backend reported.
 */
export type EngineInput =
  /** The task at the head of the queue starts: its operation is expanded against the VM now (§7.3). */
  | { readonly type: 'StartTask'; readonly taskId: string; readonly startedMs: number }
  /** One atom of the running task was carried out. `last`: the task ends with it. */
  | {
      readonly type: 'AtomPerformed';
      readonly taskId: string;
      readonly performed: PerformedAtom;
      readonly progress: number;
      readonly cancelPointsSeen: number;
      readonly cancellable: boolean;
      readonly last: boolean;
      /** Seconds since the task started. */
      readonly duration: number;
      /** The task's result so far (xenopsd JSON text, '' for none). */
      readonly resultJson: string;
    }
  /** A migration's destination takes over its task, passed to it with the VM (§7.8): its own atoms are planned. */
  | { readonly type: 'ReceiveMigration'; readonly taskId: string }
  /** A long atom of the running task got this far (a migration's transfer): its progress, as the task shows it. */
  | { readonly type: 'AtomProgressed'; readonly taskId: string; readonly progress: number; readonly cancelPointsSeen: number; readonly cancellable: boolean; readonly atom: string }
  /** The running task reached its point of no return (§7.1). */
  | { readonly type: 'PointOfNoReturn'; readonly taskId: string; readonly progress: number; readonly cancelPointsSeen: number }
  /** The running task failed; `undone`: the best-effort atoms that undid its first steps; `checkState`: queue a state check (§7.3). */
  | {
      readonly type: 'TaskFailed';
      readonly taskId: string;
      readonly error: ErrorValue;
      readonly cancelPointsSeen: number;
      readonly duration: number;
      readonly undone: readonly PerformedAtom[];
      readonly checkState: boolean;
    }
  /**
   * After a restart (§7.1), or after the actor dropped its work because the log could not be
   * written (`cause: 'store-outage'`): a task this host left executing failed with it.
   */
  | { readonly type: 'Recover'; readonly cause?: 'restart' | 'store-outage' }
  /** The guest did something by itself (a domain event, §7.5). */
  | { readonly type: 'GuestEvent'; readonly action: GuestAction }
  /** The backend's view of the VM's domain at start (`observed` absent: it has none). */
  | { readonly type: 'Reconcile'; readonly observed?: ObservedDomain }
  /** Take the VM (free, or already this host's) without doing anything else. */
  | { readonly type: 'ClaimOwnership' };

/** What a VM's decider takes. */
export type VmInput = Exclude<Command, HostCommand> | EngineInput;

/** The events an input produces and how its reply is computed from the seq they were given. */
export interface Decision {
  readonly events: readonly DecidedEvent[];
  readonly reply: (seq: number) => unknown;
  /** For a cancel of the running task: the actor aborts it after the events are durable. */
  readonly abortRunning?: boolean;
  /** StartTask: the atoms to perform, when the task did not end at once. */
  readonly plan?: Extract<Plan, { ok: true }>;
  /** AtomPerformed: the task's result so far. */
  readonly resultJson?: string;
}

export interface DecideContext {
  readonly hostId: string;
  readonly nowMs: number;
  /** Engine setting `crash_loop_window_s` (§7.5); default 120. */
  readonly crashLoopWindowS?: number;
  /** Tasks that may wait on the VM's queue before a caller's operation is refused; absent: no bound. */
  readonly maxQueuedTasks?: number;
}

export function isInternalEvent(e: DecidedEvent): e is InternalEvent {
  return 'internal' in e;
}

export function isTaskEvent(e: DecidedEvent): e is TaskEvent {
  return 'task' in e;
}

const NOTHING: Decision = Object.freeze({ events: Object.freeze([]) as readonly DecidedEvent[], reply: () => null });

/**
 * The VM's decider, the only function that produces events for a VM's stream: pure,
 * `decide(state, input) -> events | error`. It refuses everything for a quarantined VM
 * (log-damage.ts) and for a VM another host owns (`ownerOf`); a decision that writes to a VM this
 * host does not own yet (a free VM) starts by claiming it, in the same message, so that two hosts
 * claiming at once cannot both win (the append expects the stream's last seq).
 *
 * Power-state preconditions of queued operations are *not* checked when they are submitted: they
 * are checked when the task reaches the head of its queue (`StartTask`, API.md §7.3).
 */
export function decide(vm: VmAggregate, input: VmInput, ctx: DecideContext): Decision | XenopsError {
  // Its log is damaged: what the VM is now is unknown, so nothing may be decided for it.
  if (vm.quarantine) return quarantineError(vm.id, vm.quarantine);
  const owner = ownerOf(vm);
  if (owner !== undefined && owner !== ctx.hostId) return notOwnerError(vm.id, owner, ctx.hostId);
  const decision = decideOwned(vm, input, ctx);
  if (decision instanceof XenopsError || vm.owner === ctx.hostId) return decision;
  if (decision.events.length === 0 && input.type !== 'ClaimOwnership') return decision;
  const claim: EventBody = { type: 'VmOwnerChanged', vmId: vm.id, host: ctx.hostId, previousHost: vm.owner ?? '' };
  return { ...decision, events: [claim, ...decision.events] };
}

function decideOwned(vm: VmAggregate, input: VmInput, ctx: DecideContext): Decision | XenopsError {
  switch (input.type) {
    case 'AddVm':
      if (input.refuseExisting && vm.config) return Errors.alreadyExists('VM', vm.id);
      return { events: [{ type: 'VmAdded', vmId: vm.id, config: input.config }], reply: () => vm.id };
    case 'SubmitOperation':
      // An import may create the VM; everything else needs it registered.
      if (!vm.config && input.operation.kind !== 'VM.import_metadata') return Errors.vmDoesNotExist(vm.id);
      // Only callers' operations are bounded: the engine's own checks go through other inputs.
      if (ctx.maxQueuedTasks !== undefined && vm.queue.length >= ctx.maxQueuedTasks) return queueFull(vm.id, ctx.maxQueuedTasks);
      return {
        events: [
          {
            type: 'TaskCreated',
            vmId: vm.id,
            operation: input.operation,
            host: ctx.hostId,
            ctimeMs: ctx.nowMs,
            // The gateway's placement of a VM no host owned, and why (API.md §9.7): logged with the task.
            ...(input.placement ? { placement: input.placement } : {}),
          },
        ],
        reply: (seq) => String(seq),
      };
    case 'CancelTask': {
      const { taskId } = input;
      if (vm.queue.some((t) => t.taskId === taskId)) {
        return {
          events: [{ type: 'TaskFailed', taskId, error: Errors.cancelled(taskId).value, cancelPointsSeen: 0, duration: 0 }],
          reply: () => null,
        };
      }
      if (vm.running?.taskId === taskId) {
        return { events: [{ type: 'TaskCancelRequested', taskId }], reply: () => null, abortRunning: true };
      }
      // Cancelling a finished task is a no-op (§7.1).
      return NOTHING;
    }
    case 'DestroyTaskOnFinish': {
      const { taskId } = input;
      const pending = vm.running?.taskId === taskId || vm.queue.some((t) => t.taskId === taskId);
      // A task that has already ended is destroyed at once, as in xenopsd (§7.1).
      return { events: [pending ? { type: 'TaskDestroyOnFinishRequested', taskId } : { type: 'TaskDestroyed', taskId }], reply: () => null };
    }
    case 'DestroyTask':
      // A running operation keeps running and its outcome is still logged (§7.1).
      return { events: input.taskIds.map((taskId): EventBody => ({ type: 'TaskDestroyed', taskId })), reply: () => null };
    case 'AddDevice': {
      if (!vm.config) return Errors.doesNotExist('VM', vm.id);
      const id = input.device.config.id;
      return { events: [{ type: 'DeviceAdded', vmId: vm.id, device: input.device }], reply: () => [id[0], id[1]] };
    }
    case 'RemoveDevice': {
      const entry = vm.devices[input.kind].get(input.dev);
      if (!entry) return Errors.doesNotExist(...deviceDneKey(input.kind, vm.id, input.dev));
      if (entry.plugged) return Errors.deviceIsConnected();
      return { events: [{ type: 'DeviceRemoved', vmId: vm.id, kind: input.kind, dev: input.dev }], reply: () => null };
    }
    case 'ImportVm': {
      if (input.refuseExisting && vm.config) return Errors.alreadyExists('VM', vm.id);
      try {
        return { events: importEvents(vm, decodeMetadataJson(input.metadataJson)), reply: () => vm.id };
      } catch (e) {
        // Not only XenopsErrors: a bus message may carry text that is not JSON at all.
        if (e instanceof XenopsError) return e;
        if (e instanceof IllFormedStringError || e instanceof NestingLimitError) return Errors.internal(e.message);
        return Errors.internal(`import_metadata: the metadata is not valid JSON: ${singleLine((e as Error).message)}`);
      }
    }
    case 'StartTask':
      return decideStartTask(vm, input);
    case 'AtomPerformed':
      return decideAtomPerformed(vm, input, ctx);
    case 'ReceiveMigration':
      return decideReceiveMigration(vm, input);
    case 'PointOfNoReturn':
      return decidePointOfNoReturn(vm, input);
    case 'AtomProgressed': {
      if (vm.running?.taskId !== input.taskId) return Errors.internal(`task ${input.taskId} is not running on VM ${vm.id}`);
      const { taskId, progress, cancelPointsSeen, cancellable, atom } = input;
      return { events: [{ task: vm.running, body: { type: 'TaskProgressed', taskId, progress, cancelPointsSeen, cancellable, atom } }], reply: () => null };
    }
    case 'TaskFailed':
      return decideTaskFailed(vm, input, ctx);
    case 'Recover':
      return decideRecover(vm, ctx, input.cause ?? 'restart');
    case 'GuestEvent':
      return decideGuestEvent(vm, input.action, ctx);
    case 'Reconcile':
      return decideReconcile(vm, input.observed, ctx);
    case 'ClaimOwnership':
      return NOTHING;
  }
}

/**
 * Attaches audit fields to a decision's events. `audit` is the decision's own (the caller's dbg,
 * actor `vm/<id>`); engine-initiated events get `internal:<reason>`, a task's events its dbg and
 * actor `task/<id>`.
 */
export function withAudit(events: Decision['events'], audit: Audit): PendingEvent[] {
  return events.map((e) => {
    if (isInternalEvent(e)) return { audit: { ...audit, dbg: `internal:${e.internal}` }, body: e.body };
    if (isTaskEvent(e)) return { audit: { ...audit, dbg: e.task.dbg, actor: `task/${e.task.taskId}` }, body: e.body };
    return { audit, body: e };
  });
}
