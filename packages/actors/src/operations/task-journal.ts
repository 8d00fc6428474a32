import { evolveVmAll, TASK_OF_THIS_MESSAGE, XenopsError, type Decision, type EngineInput, type PendingEvent, type VmAggregate } from '@xenops/core';
import type { TaskHost } from './run-task.js';

/**
 * Where a running task's decisions go. Each step is decided by the VM's decider (through the
 * actor) against the VM as the task sees it: the log's state plus the facts not written yet.
 * With a backend that journals each atom they are written at once; otherwise they are gathered
 * and written in as few messages as possible (before a wait, at the point of no return, at the
 * end): fewer writes for the same history, since every event is kept, in order.
 */
export class TaskJournal {
  private pending: PendingEvent[];
  /** `vm` as last computed, for the host state it was computed from (atoms read it often). */
  private view: { readonly base: VmAggregate; vm: VmAggregate } | undefined;
  /** A write that failed: the log may now differ from what the actor believes, so nothing more is written. */
  private failure?: Error;

  constructor(
    private readonly host: TaskHost,
    /** The task's debug string: the audit of what its steps decide. */
    private readonly dbg: string,
    private writeEachStep: boolean,
    /**
     * The events that created the task, not written yet (a task run in the call that queued it):
     * its first write carries them, and until then the task is `TASK_OF_THIS_MESSAGE`.
     */
    createdWith: readonly PendingEvent[] = [],
  ) {
    this.pending = [...createdWith];
  }

  /**
   * From now on the steps are gathered and written together (at the next flush), whatever the
   * backend: a migration past its point of no return, whose source only cleans up and whose
   * destination must run before anything else — every write there is downtime, and a crash
   * there leaves nothing a restart's reconciliation does not find (the domain is or is not there).
   */
  gather(): void {
    this.writeEachStep = false;
  }

  /** The VM as the task sees it: the log's state plus the facts not written yet. */
  get vm(): VmAggregate {
    const base = this.host.vm;
    if (this.pending.length === 0) return base;
    if (this.view?.base !== base) this.view = { base, vm: foldPending(base, this.pending) };
    return this.view.vm;
  }

  /** Decides one step of the task and records its events; a refusal is returned, nothing recorded. */
  async decide(input: EngineInput): Promise<Decision | XenopsError> {
    this.throwIfFailed();
    const decided = this.host.decide(this.vm, input, this.dbg);
    if (decided instanceof XenopsError) return decided;
    await this.record(decided.events);
    return decided.decision;
  }

  private async record(events: readonly PendingEvent[]): Promise<void> {
    if (events.length === 0) return;
    // One message creates at most one task (§7.1: its id is the message's seq): a task created
    // while the one this journal runs is still unwritten (the state check of a failure) goes in
    // the next message.
    const second = this.pending.some(isCreation) ? events.findIndex(isCreation) : -1;
    if (second >= 0) {
      await this.record(events.slice(0, second));
      await this.flush();
      return this.record(events.slice(second));
    }
    this.pending.push(...events);
    // Keep the view current without refolding everything gathered so far.
    if (this.view && this.view.base === this.host.vm) this.view.vm = foldPending(this.view.vm, events);
    if (this.writeEachStep) await this.flush();
  }

  /** Writes what was gathered; the swap is synchronous, so concurrent flushes keep the order. */
  async flush(): Promise<void> {
    this.throwIfFailed();
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.host.append(batch);
    } catch (e) {
      // The actor stalls on such a failure and is reloaded from the log: this task writes no more.
      if (this.host.stalled) this.failure = e as Error;
      throw e;
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

const isCreation = (e: PendingEvent): boolean => e.body.type === 'TaskCreated';

/**
 * Facts not written yet, folded at the state's own version (they have no seq of their own); a
 * task they create is `TASK_OF_THIS_MESSAGE` until written, as its own events name it.
 */
function foldPending(vm: VmAggregate, events: readonly PendingEvent[]): VmAggregate {
  const placeholder = Number(TASK_OF_THIS_MESSAGE);
  const folded = evolveVmAll(
    vm,
    events.map(({ audit, body }) => ({ seq: body.type === 'TaskCreated' ? placeholder : vm.version, audit, body })),
  );
  return folded.version === vm.version ? folded : { ...folded, version: vm.version };
}
