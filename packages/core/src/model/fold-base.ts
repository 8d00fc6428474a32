import { Errors } from '../errors.js';
import { StoreUnavailableError, type EventLog } from '../store/event-log.js';
import type { SnapshotStore } from '../store/snapshot-store.js';
import { loadFoldSnapshot, type FoldSnapshot } from './fold-snapshot.js';
import type { DamagedMessage } from './log-damage.js';
import type { TaskRecord } from './task-record.js';
import type { VmAggregate } from './vm-aggregate.js';

/** Where a fold of the log starts: nothing at seq 0, or a snapshot once the log is truncated. */
export interface FoldBase {
  readonly seq: number;
  readonly vms: Map<string, VmAggregate>;
  readonly tasks: Map<string, TaskRecord>;
  /** Damaged messages at or before `seq` (the snapshot's report: they may be truncated away). */
  readonly damage: readonly DamagedMessage[];
  readonly snapshot?: FoldSnapshot;
}

/**
 * The base to fold the log from. Until retention truncates the log that is the empty state at seq
 * 0; after, it is the newest fold snapshot, which must cover every deleted message. `atMost`
 * asks for a base at or before that seq (time travel): older than the retained history, it is
 * an Internal_error.
 */
export async function foldBase(log: EventLog, snapshots: SnapshotStore | undefined, atMost?: number): Promise<FoldBase> {
  const first = await log.firstSeq();
  if (first <= 1) return { seq: 0, vms: new Map(), tasks: new Map(), damage: [] };
  const snapshot = snapshots ? await loadFoldSnapshot(snapshots) : undefined;
  if (!snapshot || snapshot.seq < first - 1) {
    throw new StoreUnavailableError(`the log starts at seq ${first} (retention) and no fold snapshot covers the messages before it`);
  }
  if (atMost !== undefined && snapshot.seq > atMost) {
    throw Errors.internal(`as_of ${atMost} is older than the retained history (the log starts at seq ${first})`);
  }
  return {
    seq: snapshot.seq,
    vms: new Map(snapshot.vms.map((vm) => [vm.id, vm])),
    tasks: new Map(snapshot.tasks.map((t) => [t.id, t])),
    damage: snapshot.damage ?? [],
    snapshot,
  };
}
