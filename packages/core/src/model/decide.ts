import { Errors, type XenopsError } from '../errors.js';
import type { EventBody } from '../events/event.js';
import type { Command } from './command.js';
import type { VmAggregate } from './vm-aggregate.js';

/** The events a command produces and how its reply is computed from the seq they were given. */
export interface Decision {
  readonly events: readonly EventBody[];
  readonly reply: (seq: number) => unknown;
  /** For a cancel of the running task: the actor aborts it after the events are durable. */
  readonly abortRunning?: boolean;
}

/**
 * The VM's decider: pure, `decide(state, command) -> events | error`. Power-state preconditions
 * of queued operations are *not* checked here: they are checked when the task reaches the head
 * of its queue (API.md §7.3).
 */
export function decide(vm: VmAggregate, command: Command, ctx: { readonly hostId: string; readonly nowMs: number }): Decision | XenopsError {
  switch (command.type) {
    case 'AddVm':
      if (command.refuseExisting && vm.config) return Errors.alreadyExists('VM', vm.id);
      return { events: [{ type: 'VmAdded', vmId: vm.id, config: command.config }], reply: () => vm.id };
    case 'SubmitOperation':
      if (!vm.config) return Errors.vmDoesNotExist(vm.id);
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
  }
}
