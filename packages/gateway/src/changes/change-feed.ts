/**
 * The live change feed (records of every message the projection folds, §9.4) and the replay of
 * past records from the log (§9.6: each record carries the object's value as of its seq).
 */
import {
  foldBase,
  foldStoredMessageSteps,
  type EventLog,
  type SnapshotStore,
  type StoredMessage,
  type TaskRecord,
  type VmAggregate,
} from '@xenops/core';
import type { FoldStep } from '@xenops/core';
import type { Projection } from '../read-model/projection.js';
import { recordsOfMessage, type ChangeRecord } from './records.js';

export type ChangeListener = (records: readonly ChangeRecord[]) => void;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  /** Attach to the projection; records are built only while somebody listens. */
  constructor(
    private readonly projection: Projection,
    private readonly logger: (line: string) => void = () => {},
  ) {
    projection.addObserver((seq, steps) => {
      if (this.listeners.size === 0) return;
      const records = recordsOfMessage(seq, steps);
      if (records.length === 0) return;
      for (const l of [...this.listeners]) {
        try {
          l(records);
        } catch (e) {
          // One listener's failure must not affect the others, nor go unnoticed.
          this.logger(`change feed: a listener failed at seq ${seq}: ${e instanceof Error ? e.message : String(e)}`);
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

  /** A damaged message gives no steps and quarantines its VM here as in the projection. */
  step(m: StoredMessage): FoldStep[] {
    return foldStoredMessageSteps({ vms: this.vms, tasks: this.tasks }, m);
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
    const steps = fold.step(m);
    if (m.seq <= since) continue;
    const records = recordsOfMessage(m.seq, steps);
    if (records.length) await emit(records);
  }
}
