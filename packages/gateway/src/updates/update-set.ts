/**
 * The UPDATES set of API.md §7.7: each live object (`Dynamic.id`) mapped to the seq of the last
 * log event that signalled it, plus the barriers. Ids are log seqs, so repeated changes coalesce
 * by construction and a client's token stays valid across restarts and gateways.
 *
 * Maintained from the projection's fold (`apply` per message, in log order). Pure data structure:
 * no timers, no I/O.
 */
import { compareDynamicIds, vmOfDynamicId, type DynamicId, type UpdatesResult } from '@xenops/core';

export interface UpdateEntry {
  readonly id: DynamicId;
  readonly seq: number;
}

interface BarrierRecord {
  readonly barrierId: number;
  readonly seq: number;
  /** Snapshot entries, already in §7.7 order (ascending seq, then kind, then id). */
  readonly entries: readonly UpdateEntry[];
}

/** What one message did to the set. */
export interface UpdateSetChange {
  readonly signals?: readonly DynamicId[];
  readonly removes?: readonly DynamicId[];
  readonly barrierInjected?: { readonly barrierId: number; readonly entries: readonly UpdateEntry[] };
  readonly barrierRemoved?: number;
}

export interface UpdateSetState {
  readonly entries: readonly UpdateEntry[];
  readonly barriers: readonly BarrierRecord[];
  readonly newest: number;
}

export const compareEntries = (a: UpdateEntry, b: UpdateEntry): number => a.seq - b.seq || compareDynamicIds(a.id, b.id);

/** An entry as the set holds it: `current` while it is its id's latest (the journal keeps stale ones until compaction). */
interface JournalEntry extends UpdateEntry {
  current: boolean;
}

/**
 * Live entries by kind, then by the id's own string (a device: VM and name): ids are looked up
 * once per signal, and a string the decoder made hashes once, where a key built per lookup would
 * be hashed every time (the update set was ~15 % of a start's fold).
 */
type LiveIndex = Map<DynamicId[0], Map<string, JournalEntry>>;

/** An id's key among the ids of its kind: a VM's or task's own string, a device's VM and name. */
const keyWithinKind = (arg: DynamicId[1]): string => (typeof arg === 'string' ? arg : `${arg[0]}\u0000${arg[1]}`);

export class UpdateSet {
  private readonly live: LiveIndex = new Map();
  private liveCount = 0;
  /**
   * Every signal in fold order (ascending seq); an element is current only while it is its id's
   * latest entry. Compacted when stale elements dominate.
   */
  private journal: JournalEntry[] = [];
  private barriers: BarrierRecord[] = [];
  /** Largest seq at which an id was signalled or a barrier injected (0: never). */
  private newestValue = 0;

  /** Number of live objects. */
  get size(): number {
    return this.liveCount;
  }

  /** Largest seq of any signal or barrier injection so far: nothing can be newer than it. */
  get newest(): number {
    return this.newestValue;
  }

  /** Applies the effects of one message, with seq `seq` (ascending across calls). */
  apply(seq: number, change: UpdateSetChange): void {
    // Within one message: signals and removals in the order given (a task that ends and is
    // destroyed by the same write is removed).
    for (const id of change.signals ?? []) {
      const entry: JournalEntry = { id, seq, current: true };
      this.setLive(id, entry);
      this.journal.push(entry);
      if (seq > this.newestValue) this.newestValue = seq;
    }
    for (const id of change.removes ?? []) this.setLive(id, undefined);
    if (change.barrierInjected) {
      const entries = [...change.barrierInjected.entries].sort(compareEntries);
      this.barriers.push({ barrierId: change.barrierInjected.barrierId, seq, entries });
      if (seq > this.newestValue) this.newestValue = seq;
    }
    if (change.barrierRemoved !== undefined) {
      const id = change.barrierRemoved;
      this.barriers = this.barriers.filter((b) => b.barrierId !== id);
    }
    if (this.journal.length > 1024 && this.journal.length > 2 * this.liveCount) this.compact();
  }

  /** Current entries of a VM and its devices (tasks excluded), in §7.7 order: a barrier's snapshot. */
  entriesOfVm(vmId: string): UpdateEntry[] {
    const out: UpdateEntry[] = [];
    for (const e of this.liveEntries()) if (vmOfDynamicId(e.id) === vmId) out.push({ id: e.id, seq: e.seq });
    return out.sort(compareEntries);
  }

  /** Whether `get(lastId)` would return anything. */
  hasNewerThan(lastId: number): boolean {
    if (this.newestValue <= lastId) return false;
    if (this.barriers.length && this.barriers[this.barriers.length - 1]!.seq > lastId) return true;
    for (let i = this.firstIndexAfter(lastId); i < this.journal.length; i++) {
      if (this.journal[i]!.current) return true;
    }
    return false;
  }

  /** §7.7 `UPDATES.get` without the blocking: `[barriers, ids, next_id]`. */
  get(lastId: number): UpdatesResult {
    let next = lastId;
    const entries: UpdateEntry[] = [];
    for (let i = this.firstIndexAfter(lastId); i < this.journal.length; i++) {
      const e = this.journal[i]!;
      if (e.current) entries.push(e);
    }
    entries.sort(compareEntries);
    if (entries.length) next = Math.max(next, entries[entries.length - 1]!.seq);
    const barriers: UpdatesResult[0] = [];
    for (const b of this.barriers) {
      if (b.seq <= lastId) continue;
      barriers.push([b.barrierId, b.entries.filter((e) => e.seq > lastId).map((e) => e.id)]);
      next = Math.max(next, b.seq);
    }
    return [barriers, entries.map((e) => e.id), next];
  }

  /** Ids of the live barriers, oldest first (get_diagnostics). */
  barrierIds(): number[] {
    return this.barriers.map((b) => b.barrierId);
  }

  /** The set as plain data, for fold snapshots. */
  exportState(): UpdateSetState {
    const entries: UpdateEntry[] = [];
    for (const e of this.liveEntries()) entries.push({ id: e.id, seq: e.seq });
    // A copy: the caller keeps this state (a start folding in halves, to begin again from it) while the set goes on pushing barriers.
    return { entries: entries.sort(compareEntries), barriers: [...this.barriers], newest: this.newestValue };
  }

  /** Replaces the set with a snapshot's state (before any message after the snapshot is applied). */
  importState(state: unknown): void {
    const s = state as UpdateSetState;
    if (!s || !Array.isArray(s.entries) || !Array.isArray(s.barriers)) return;
    this.live.clear();
    this.liveCount = 0;
    this.journal = s.entries.map((e) => ({ id: e.id, seq: e.seq, current: true }));
    for (const e of this.journal) this.setLive(e.id, e);
    this.barriers = [...s.barriers];
    this.newestValue = s.newest;
  }

  /**
   * Adds the set the other half of a start's fold built (read-model/fold-partition.ts): its ids
   * are other objects than this one's. False, changing nothing, when an id is live in both.
   */
  mergeState(state: unknown): boolean {
    const other = state as UpdateSetState;
    if (!other || !Array.isArray(other.entries) || !Array.isArray(other.barriers)) return false;
    for (const e of other.entries) if (this.holds(e.id)) return false;
    const mine = this.exportState();
    this.importState({
      entries: [...mine.entries, ...other.entries].sort(compareEntries),
      barriers: [...mine.barriers, ...other.barriers].sort((a, b) => a.seq - b.seq),
      newest: Math.max(mine.newest, other.newest),
    });
    return true;
  }

  /** Index of the first journal element with seq > lastId (binary search; the journal is sorted by seq). */
  private firstIndexAfter(lastId: number): number {
    let lo = 0;
    let hi = this.journal.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.journal[mid]!.seq <= lastId) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private compact(): void {
    this.journal = this.journal.filter((e) => e.current);
  }

  private *liveEntries(): Generator<JournalEntry> {
    for (const byId of this.live.values()) yield* byId.values();
  }

  private holds(id: DynamicId): boolean {
    const [kind, arg] = id;
    return this.live.get(kind)?.has(keyWithinKind(arg)) ?? false;
  }

  /** Makes `entry` the live one of `id` (none: the id is gone). */
  private setLive(id: DynamicId, entry: JournalEntry | undefined): void {
    const [kind, arg] = id;
    const key = keyWithinKind(arg);
    let byId = this.live.get(kind);
    const old = byId?.get(key);
    if (old) old.current = false;
    if (entry) {
      if (!byId) this.live.set(kind, (byId = new Map()));
      byId.set(key, entry);
      if (!old) this.liveCount++;
    } else if (old) {
      byId!.delete(key);
      this.liveCount--;
    }
  }
}
