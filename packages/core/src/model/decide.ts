import { Errors, XenopsError } from '../errors.js';
import { IllFormedStringError, NestingLimitError, singleLine } from '../idl/wire-checks.js';
import type { Audit } from '../events/audit.js';
import type { PendingEvent } from '../events/codec.js';
import type { EventBody, GuestAction } from '../events/event.js';
import type { Action } from '../idl/index.js';
import type { Command } from './command.js';
import { deviceDneKey } from './devices.js';
import { decodeMetadataJson, importEvents } from './import-metadata.js';
import { quarantineError } from './log-damage.js';
import type { Operation } from './operation.js';
import { queueFull } from './queue-limit.js';
import type { VmAggregate } from './vm-aggregate.js';

/** An event written on behalf of the engine rather than the caller (audit dbg `internal:<reason>`). */
export interface InternalEvent {
  readonly internal: string;
  readonly body: EventBody;
}

/** The events a command produces and how its reply is computed from the seq they were given. */
export interface Decision {
  readonly events: ReadonlyArray<EventBody | InternalEvent>;
  readonly reply: (seq: number) => unknown;
  /** For a cancel of the running task: the actor aborts it after the events are durable. */
  readonly abortRunning?: boolean;
}

export interface DecideContext {
  readonly hostId: string;
  readonly nowMs: number;
  /** Engine setting `crash_loop_window_s` (§7.5). */
  readonly crashLoopWindowS?: number;
  /** Tasks that may wait on the VM's queue before a caller's operation is refused; absent: no bound. */
  readonly maxQueuedTasks?: number;
}

export function isInternalEvent(e: EventBody | InternalEvent): e is InternalEvent {
  return 'internal' in e;
}

/**
 * The VM's decider: pure, `decide(state, command) -> events | error`. Power-state preconditions
 * of queued operations are *not* checked here: they are checked when the task reaches the head
 * of its queue (API.md §7.3). A quarantined VM (log-damage.ts) refuses every command.
 */
export function decide(vm: VmAggregate, command: Command, ctx: DecideContext): Decision | XenopsError {
  // Its log is damaged: what the VM is now is unknown, so nothing may be decided for it.
  if (vm.quarantine) return quarantineError(vm.id, vm.quarantine);
  switch (command.type) {
    case 'AddVm':
      if (command.refuseExisting && vm.config) return Errors.alreadyExists('VM', vm.id);
      return { events: [{ type: 'VmAdded', vmId: vm.id, config: command.config }], reply: () => vm.id };
    case 'SubmitOperation':
      // An import may create the VM; everything else needs it registered.
      if (!vm.config && command.operation.kind !== 'VM.import_metadata') return Errors.vmDoesNotExist(vm.id);
      // Only callers' operations are bounded: the engine's own checks go through other commands.
      if (ctx.maxQueuedTasks !== undefined && vm.queue.length >= ctx.maxQueuedTasks) return queueFull(vm.id, ctx.maxQueuedTasks);
      return {
        events: [{ type: 'TaskCreated', vmId: vm.id, operation: command.operation, host: ctx.hostId, ctimeMs: ctx.nowMs }],
        reply: (seq) => String(seq),
      };
    case 'CancelTask': {
      const { taskId } = command;
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
      return { events: [], reply: () => null };
    }
    case 'DestroyTaskOnFinish': {
      const { taskId } = command;
      const pending = vm.running?.taskId === taskId || vm.queue.some((t) => t.taskId === taskId);
      // A task that has already ended is destroyed at once, as in xenopsd (§7.1).
      return { events: [pending ? { type: 'TaskDestroyOnFinishRequested', taskId } : { type: 'TaskDestroyed', taskId }], reply: () => null };
    }
    case 'AddDevice': {
      if (!vm.config) return Errors.doesNotExist('VM', vm.id);
      const id = command.device.config.id;
      return { events: [{ type: 'DeviceAdded', vmId: vm.id, device: command.device }], reply: () => [id[0], id[1]] };
    }
    case 'RemoveDevice': {
      const entry = vm.devices[command.kind].get(command.dev);
      if (!entry) return Errors.doesNotExist(...deviceDneKey(command.kind, vm.id, command.dev));
      if (entry.plugged) return Errors.deviceIsConnected();
      return { events: [{ type: 'DeviceRemoved', vmId: vm.id, kind: command.kind, dev: command.dev }], reply: () => null };
    }
    case 'ImportVm': {
      if (command.refuseExisting && vm.config) return Errors.alreadyExists('VM', vm.id);
      try {
        return { events: importEvents(vm, decodeMetadataJson(command.metadataJson)), reply: () => vm.id };
      } catch (e) {
        // Not only XenopsErrors: a bus message may carry text that is not JSON at all.
        if (e instanceof XenopsError) return e;
        if (e instanceof IllFormedStringError || e instanceof NestingLimitError) return Errors.internal(e.message);
        return Errors.internal(`import_metadata: the metadata is not valid JSON: ${singleLine((e as Error).message)}`);
      }
    }
    case 'SetGuestMode':
      if (!vm.config) return Errors.vmDoesNotExist(vm.id);
      return { events: [{ type: 'GuestModeChanged', vmId: vm.id, mode: command.mode }], reply: () => null };
    case 'RequestGuestAction':
      return decideGuestAction(vm, command.action, ctx);
    case 'SetPoolSize':
    case 'SetCancelTrigger':
    case 'Diagnose':
      return Errors.internal(`${command.type} is addressed to the host agent, not to a VM`);
  }
}

function decideGuestAction(vm: VmAggregate, action: GuestAction, ctx: DecideContext): Decision | XenopsError {
  if (!vm.config) return Errors.vmDoesNotExist(vm.id);
  if (!vm.domain) return Errors.domainDoesNotExist(vm.id);
  const actions = effectiveActions(vm, action, ctx);
  const operation: Operation = { kind: 'VM.guest_action', action, actions, autoDestroy: true };
  const waiting = vm.queue.find((t) => t.operation.kind === 'VM.guest_action' && t.operation.action === action);
  const events: Array<EventBody | InternalEvent> = [{ type: 'GuestActionRequested', vmId: vm.id, action }];
  // A check already waiting on the queue absorbs a new one (§7.2).
  if (!waiting) {
    events.push({
      internal: 'check_state',
      body: { type: 'TaskCreated', vmId: vm.id, operation, host: ctx.hostId, ctimeMs: ctx.nowMs },
    });
  }
  return { events, reply: () => null };
}

/**
 * The action list a guest event selects (§7.5), with the crash-loop guard: a crash within the
 * window after the last start turns every `Start` into `Shutdown`. A list without any of
 * Shutdown, Start, Pause, Softreboot is treated as `[Shutdown]`, so no domain is left half dead.
 */
export function effectiveActions(vm: VmAggregate, action: GuestAction, ctx: DecideContext): Action[] {
  const config = vm.config!;
  let list: readonly Action[];
  switch (action) {
    case 'halt':
      list = config.on_shutdown;
      break;
    case 'reboot':
      list = config.on_reboot;
      break;
    case 'crash': {
      const window = ctx.crashLoopWindowS ?? 120;
      const ranFor = ctx.nowMs / 1000 - (vm.domain?.startTime ?? 0);
      list = ranFor < window ? config.on_crash.map((a) => (a === 'Start' ? 'Shutdown' : a)) : config.on_crash;
      break;
    }
    case 'suspend':
      list = ['Shutdown'];
      break;
    case 'soft_reset':
      list = config.on_softreboot;
      break;
  }
  const effective = list.some((a) => a !== 'Coredump') ? [...list] : [...list, 'Shutdown' as const];
  return effective;
}

/** Attaches audit fields to a decision's events; engine-initiated ones get `internal:<reason>`. */
export function withAudit(events: Decision['events'], audit: Audit): PendingEvent[] {
  return events.map((e) => (isInternalEvent(e) ? { audit: { ...audit, dbg: `internal:${e.internal}` }, body: e.body } : { audit, body: e }));
}
