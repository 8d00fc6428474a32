/**
 * The live change feed (records of every message the projection folds, §9.4) and the replay of
 * past records from the log (§9.6: each record carries the object's value as of its seq).
 */
import {
  decodeBatch,
  emptyVm,
  foldBase,
  evolveTask,
  evolveVm,
  taskIdOf,
  vmIdOf,
  type EventLog,
  type SnapshotStore,
  type StoredMessage,
  type TaskRecord,
  type VmAggregate,
} from '@xenops/core';
import type { FoldStep, Projection } from '../read-model/projection.js';
import { recordsOfMessage, type ChangeRecord } from './records.js';

export type ChangeListener = (records: readonly ChangeRecord[]) => void;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  /** Attach to the projection; records are built only while somebody listens. */
  constructor(private readonly projection: Projection) {
    projection.addObserver((seq, steps) => {
      if (this.listeners.size === 0) return;
      const records = recordsOfMessage(seq, steps);
      if (records.length === 0) return;
      for (const l of [...this.listeners]) {
        try {
          l(records);
        } catch {
          /* one listener's failure must not affect the others */
        }
      }
    });
  }

  /**
   * Subscribes to the records of every message folded from now on. Returns the projection's seq
   * at subscription time: every later record has a greater seq, every earlier one is in the log.
   */
  subscribe(listener: ChangeListener): { readonly fromSeq: number; readonly unsubscribe: () => void } {
    this.listeners.add(listener);
    return { fromSeq: this.projection.seq, unsubscribe: () => this.listeners.delete(listener) };
  }
}

/** The projection's fold, replayed privately over a bounded part of the log (same steps). */
export class HistoryFold {
  constructor(
    private readonly vms = new Map<string, VmAggregate>(),
    private readonly tasks = new Map<string, TaskRecord>(),
  ) {}

  step(m: StoredMessage): FoldStep[] {
    const steps: FoldStep[] = [];
    const events = decodeBatch(m.seq, m.data);
    const vmStream = m.stream.startsWith('vm/') ? m.stream.slice(3) : undefined;
    let vm = vmStream === undefined ? undefined : (this.vms.get(vmStream) ?? emptyVm(vmStream));
    for (const event of events) {
      let vmBefore: VmAggregate | undefined;
      let vmAfter: VmAggregate | undefined;
      if (vm) {
        vmBefore = vm;
        vm = evolveVm(vm, event);
        vmAfter = vm;
      } else {
        const named = vmIdOf(event.body);
        vmBefore = vmAfter = named === undefined ? undefined : this.vms.get(named);
      }
      let taskBefore: TaskRecord | undefined;
      let taskAfter: TaskRecord | undefined;
      const taskId = taskIdOf(event);
      if (taskId !== undefined) {
        taskBefore = this.tasks.get(taskId);
        taskAfter = evolveTask(taskBefore, event);
        if (taskAfter) this.tasks.set(taskId, taskAfter);
        else this.tasks.delete(taskId);
      }
      steps.push({
        event,
        stream: m.stream,
        ...(vmBefore ? { vmBefore } : {}),
        ...(vmAfter ? { vmAfter } : {}),
        ...(taskBefore ? { taskBefore } : {}),
        ...(taskAfter ? { taskAfter } : {}),
      });
    }
    if (vmStream !== undefined && vm) {
      if (vm.config || vm.domain || vm.queue.length || vm.running) this.vms.set(vmStream, vm);
      else this.vms.delete(vmStream);
    }
    return steps;
  }
}

/**
 * Emits the records with `since < seq <= toSeq`, folding the log from its start (records before
 * `since` are folded, not built). `emit` may return a promise to apply back-pressure.
 */
export async function replayRecords(
  log: EventLog,
  since: number,
  toSeq: number,
  emit: (records: readonly ChangeRecord[]) => void | Promise<void>,
  isCancelled: () => boolean = () => false,
  snapshots?: SnapshotStore,
): Promise<void> {
  if (toSeq <= since) return;
  // Once retention truncated the log, the retained history starts at its covering snapshot.
  const base = await foldBase(log, snapshots);
  const fold = new HistoryFold(base.vms, base.tasks);
  for await (const m of log.read(base.seq, toSeq)) {
    if (isCancelled()) return;
    let steps: FoldStep[];
    try {
      steps = fold.step(m);
    } catch {
      continue; // an undecodable message: the projection skips it too
    }
    if (m.seq <= since) continue;
    const records = recordsOfMessage(m.seq, steps);
    if (records.length) await emit(records);
  }
}
