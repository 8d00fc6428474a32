import type { VmAggregate } from '@xenops/core';
import { assertEvent, assign, fromPromise, setup } from 'xstate';

export interface VmMachineContext {
  readonly vm: VmAggregate;
  /** Runs the task at the head of the queue to its end (the VM actor's executor). */
  readonly executeNext: () => Promise<void>;
  /** Set when the agent is shutting down: queued tasks stay queued for the next start. */
  readonly draining: boolean;
  /** This agent's host: a migration passed to it is its work to go on with (§7.8). */
  readonly hostId: string;
}

export type VmMachineEvent =
  /** The VM's state after an append (any writer: a command, a task, the agent's recovery). */
  | { readonly type: 'vm.changed'; readonly vm: VmAggregate }
  | { readonly type: 'agent.draining' };

/**
 * The VM's lifecycle as an XState machine. The power state lives in the folded log state; the
 * machine decides *when* work runs: `idle` while nothing is queued, `executing` while the head
 * of the queue runs (the invoked `executeNextTask` actor performs its atoms), one task at a time,
 * in arrival order (FIFO, API.md §7.2).
 *
 * The executor is the VmActor's (it owns the log writer and the backend), given as input.
 */
export const vmMachine = setup({
  types: {
    context: {} as VmMachineContext,
    events: {} as VmMachineEvent,
    input: {} as { vm: VmAggregate; executeNext: () => Promise<void>; hostId: string },
  },
  actors: {
    // One machine definition shared by every VM: the executor comes in through the input.
    executeNextTask: fromPromise<void, { executeNext: () => Promise<void> }>(({ input }) => input.executeNext()),
  },
  guards: {
    // A quarantined VM (its log is damaged) runs nothing: its queue stays as the log left it.
    hasRunnableTask: ({ context }) => !context.draining && context.vm.quarantine === undefined && hasWorkToRun(context.vm, context.hostId),
  },
  actions: {
    adoptState: assign({
      vm: ({ event }) => {
        assertEvent(event, 'vm.changed');
        return event.vm;
      },
    }),
    startDraining: assign({ draining: true }),
  },
}).createMachine({
  id: 'vm',
  context: ({ input }) => ({ vm: input.vm, executeNext: input.executeNext, draining: false, hostId: input.hostId }),
  initial: 'idle',
  on: {
    'vm.changed': { actions: 'adoptState' },
    'agent.draining': { actions: 'startDraining' },
  },
  states: {
    idle: {
      always: { guard: 'hasRunnableTask', target: 'executing' },
    },
    executing: {
      invoke: {
        src: 'executeNextTask',
        input: ({ context }) => ({ executeNext: context.executeNext }),
        onDone: { target: 'idle' },
        onError: { target: 'stalled' },
      },
    },
    /** The log could not be written: the agent reloads this VM from the log and retries. */
    stalled: { type: 'final' },
  },
});

/**
 * Work this host runs next: the head of the queue when nothing runs, or a migration whose
 * switch-over passed its running task to this host (§7.8).
 */
export function hasWorkToRun(vm: VmAggregate, hostId: string): boolean {
  if (vm.running === undefined) return vm.queue.length > 0;
  return vm.running.host === hostId && vm.running.migration?.handedOver === true;
}
