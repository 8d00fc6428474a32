import { evolveVmAll, type PendingEvent, type VmAggregate } from '@xenops/core';
import type { TaskHost } from './run-task.js';

/**
 * Where a running task's facts go. With a backend that journals each atom they are written at
 * once. Otherwise they are gathered and written in as few messages as possible (before a wait,
 * at the point of no return, at the end): fewer writes for the same history, since every event
 * is kept, in order.
 */
export class TaskJournal {
  private pending: PendingEvent[] = [];
  /** `vm` as last computed, for the host state it was computed from (atoms read it often). */
  private view: { readonly base: VmAggregate; vm: VmAggregate } | undefined;

  constructor(
    private readonly host: TaskHost,
    private readonly writeEachStep: boolean,
  ) {}

  /** The VM as the task sees it: the log's state plus the facts not written yet. */
  get vm(): VmAggregate {
    const base = this.host.vm;
    if (this.pending.length === 0) return base;
    if (this.view?.base !== base) this.view = { base, vm: foldPending(base, this.pending) };
    return this.view.vm;
  }

  async record(events: readonly PendingEvent[]): Promise<void> {
    this.pending.push(...events);
    // Keep the view current without refolding everything gathered so far.
    if (this.view && this.view.base === this.host.vm) this.view.vm = foldPending(this.view.vm, events);
    if (this.writeEachStep) await this.flush();
  }

  /** Writes what was gathered; the swap is synchronous, so concurrent flushes keep the order. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    await this.host.append(batch);
  }
}

/** Facts not written yet, folded at the state's own version (they have no seq of their own). */
function foldPending(vm: VmAggregate, events: readonly PendingEvent[]): VmAggregate {
  return evolveVmAll(vm, events.map(({ audit, body }) => ({ seq: vm.version, audit, body })));
}
