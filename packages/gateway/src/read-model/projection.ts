import {
  damagedMessage,
  findDamage,
  foldBase,
  foldMessage,
  foldStoredMessageSteps,
  StoreUnavailableError,
  XenopsError,
  emptyHost,
  evolveHost,
  HOST_STREAM_PREFIX,
  loadFoldSnapshot,
  noteDamage,
  readMessage,
  saveFoldSnapshot,
  type DamagedMessage,
  type EventLog,
  type FoldSnapshot,
  type FoldSnapshotLoader,
  type FoldState,
  type FoldStep,
  type HostState,
  type SnapshotStore,
  type StoredMessage,
  type Subscription,
  type TaskRecord,
  type VmAggregate,
} from '@xenops/core';
import { FoldHelper, type HalfFold } from './fold-helper.js';
import { halfOf, TaskReferences } from './fold-partition.js';

const MAX_UNCLAIMED_OUTCOMES = 10_000;
const CHECKPOINT_EVERY = 1000;
const MAX_CHECKPOINTS = 64;
/**
 * Checkpoints share their records with the live fold, but each holds its own Map entries: with
 * 10,000 VMs and as many tasks, 64 of them were ~50 MiB. Older ones are dropped past this many
 * entries in all (a read older than the oldest checkpoint replays from the start of the log).
 */
const MAX_CHECKPOINT_ENTRIES = 200_000;

export type { FoldStep } from '@xenops/core';

/**
 * Observes the fold: called once per message, after all its events are folded and before the
 * projection's seq advances (so `waitFor(seq)` resolves only after every observer has seen it).
 * Must not throw (a throw is swallowed) and must not block.
 */
export type ProjectionObserver = (seq: number, steps: readonly FoldStep[]) => void;

/** An observer whose state must survive in snapshots of the fold (e.g. the UPDATES set). */
export interface PersistentObserver {
  readonly name: string;
  exportState(): unknown;
  importState(state: unknown): void;
  /**
   * Adds the state the other half of a start's fold built (fold-partition.ts), about objects of
   * its own; false (nothing changed) when both halves hold the same object. Without it, a start
   * folds in order only.
   */
  mergeState?(state: unknown): boolean;
}

export interface ProjectionOptions {
  /** Where fold snapshots live; without it the whole log is folded at every start. */
  readonly snapshots?: SnapshotStore;
  /**
   * Messages folded between two snapshots: this many (default 5000), or as many as the fold holds
   * VMs and tasks when that is more, so that the snapshots' work per message does not grow with
   * the number of VMs (a snapshot serializes them all).
   */
  readonly snapshotEvery?: number;
  /**
   * After a failed snapshot save (the store was unreachable), the first retry comes this long
   * after (doubling up to a minute while it keeps failing), not `snapshotEvery` messages later.
   * Default 2000 ms.
   */
  readonly snapshotRetryMs?: number;
  /** Where `start` gets the fold snapshot (default: loads it from `snapshots`). */
  readonly loadFoldSnapshot?: FoldSnapshotLoader;
  /** How long `waitFor` waits for the fold to reach a seq (default 60 s). */
  readonly waitTimeoutMs?: number;
  /**
   * A start with at least this many messages to fold and no fold state yet (no snapshot, or one
   * of an empty log) folds half of them on a worker thread (fold-partition.ts). Default 50,000;
   * `Infinity`: always in order.
   */
  readonly foldInHalvesFrom?: number;
  readonly logger?: (line: string) => void;
}

const DEFAULT_WAIT_TIMEOUT_MS = 60_000;
const FOLD_IN_HALVES_FROM = 50_000;

/**
 * The read model cannot show a write: it did not reach the write's seq in time, or it stopped
 * at a message it could not fold. Answered as an `Internal_error` with this message.
 */
export class ReadModelBehindError extends XenopsError {
  constructor(message: string) {
    super(['Internal_error', message]);
  }
}

export interface TaskOutcome {
  readonly task: TaskRecord;
  readonly seq: number;
}

/**
 * The gateway's read model: the log folded with the same `evolve` functions the actors use, one
 * small immutable record per VM and per task inside plain Maps (a `produce` over one big map of
 * every VM would copy it per event).
 */
export class Projection {
  readonly vms = new Map<string, VmAggregate>();
  readonly tasks = new Map<string, TaskRecord>();
  private seqValue = 0;
  private restoredSeqValue = 0;
  private subscription?: Subscription;
  private seqWaiters: Array<{ seq: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private taskWaiters = new Map<string, Array<(outcome: TaskOutcome) => void>>();
  /**
   * Outcomes of self-destroying tasks (S/q calls), kept until their caller collects them: such a
   * task can end and vanish before the caller starts waiting. Bounded: oldest dropped first.
   */
  private readonly unclaimedOutcomes = new Map<string, TaskOutcome>();
  private failure?: Error;
  private readonly observers: ProjectionObserver[] = [];
  private readonly persistent: PersistentObserver[] = [];
  /** Host-level facts and the largest domid each host used: kept for agents' restarts. */
  readonly hosts = new Map<string, HostState>();
  readonly domids = new Map<string, number>();
  private sinceSnapshot = 0;
  /**
   * Copies of the fold every CHECKPOINT_EVERY messages (Maps of references to immutable
   * records: cheap), so that a time-travel read replays a few messages, not the whole log.
   */
  private readonly checkpoints: Array<{ seq: number; vms: Map<string, VmAggregate>; tasks: Map<string, TaskRecord> }> = [];
  private sinceCheckpoint = 0;
  private snapshotting?: Promise<void>;
  private snapshotRetry?: NodeJS.Timeout;
  /** The start's fold has reached the head it aimed at (snapshots are taken from then on). */
  private caughtUp = false;
  private snapshotFailures = 0;
  private closing = false;
  /** Damaged messages met so far, in seq order (log-damage.ts): /healthz, /metrics and verify report them. */
  private readonly damaged: DamagedMessage[] = [];
  /** The fold's maps as the shared fold functions take them. */
  private readonly foldState: FoldState = { vms: this.vms, tasks: this.tasks, damage: this.damaged };
  /** The integrity scan of the part of the log the start snapshot covers (see `start`). */
  private scanning?: Promise<void>;
  /** While this fold is one half of a start's (fold-partition.ts): the tasks it met without a record. */
  private half?: TaskReferences;

  constructor(
    private readonly log: EventLog,
    private readonly opts: ProjectionOptions = {},
  ) {}

  /** The seq of the snapshot the start restored (0: none): every message after it was read and decoded here. */
  get restoredSeq(): number {
    return this.restoredSeqValue;
  }

  /** Head seq folded so far. */
  get seq(): number {
    return this.seqValue;
  }

  get healthy(): boolean {
    return this.failure === undefined;
  }

  /**
   * The messages of the log this read model cannot read, in seq order. The service stays up
   * (degraded): each damaged VM stream quarantines its VM, every other VM is served.
   */
  get damage(): readonly DamagedMessage[] {
    return this.damaged;
  }

  /**
   * Adds an observer of the fold (add it before `start()` to see the whole log). An observer
   * with state to keep across restarts gives `persistent`: its state goes into fold snapshots.
   */
  addObserver(observer: ProjectionObserver, persistent?: PersistentObserver): void {
    this.observers.push(observer);
    if (persistent) this.persistent.push(persistent);
  }

  /**
   * Restores the latest fold snapshot (if any), folds the log after it, then follows it live.
   * Resolves once caught up with the head at call time.
   */
  async start(): Promise<void> {
    const head = await this.log.head();
    const snapshots = this.opts.snapshots;
    const load = this.opts.loadFoldSnapshot ?? (snapshots ? () => loadFoldSnapshot(snapshots) : undefined);
    const snapshot = load
      ? await load().catch((e: unknown) => {
          this.opts.logger?.(`read model: cannot load the fold snapshot (${(e as Error).message}); folding the whole log`);
          return undefined;
        })
      : undefined;
    if (snapshot && snapshot.seq <= head) this.restore(snapshot);
    const first = await this.log.firstSeq();
    if (first > this.seqValue + 1) {
      throw new StoreUnavailableError(`the log starts at seq ${first} (retention) but the newest fold snapshot is at seq ${this.seqValue}`);
    }
    // Messages the snapshot covers were readable when it was taken, but a file damaged since
    // would go unnoticed until a full replay: they are decoded once more, in the background, so
    // that the start stays as quick as the snapshot makes it.
    if (this.seqValue >= first) this.scanning = this.scanCovered(first - 1, this.seqValue);
    if (!(await this.catchUpInHalves(head))) await this.catchUp(head);
    // Closed meanwhile: no tail to follow (nothing would close it).
    if (this.closing) return;
    this.subscription = this.log.tail(this.seqValue, async (m) => {
      // Seqs are contiguous: a duplicate delivery is dropped, and a hole (a delivery a transport
      // lost across a reconnection) is read back from the log before going on, so no write can
      // be acknowledged on a read model that skipped it.
      if (m.seq <= this.seqValue || this.failure) return;
      if (m.seq > this.seqValue + 1) await this.repairGap(m.seq);
      this.apply(m);
    });
    // A fold that stopped on the way (see `stop`) still starts: /healthz says so, writes are refused.
    // Folding the log at the start takes as long as the log is long: no bound there.
    await this.waitFor(head, Infinity).catch((e: unknown) => {
      if (!this.failure) throw e;
    });
    this.caughtUp = true;
    // One snapshot of what the start folded, instead of one per snapshotEvery messages of it.
    if (this.opts.snapshots && this.snapshotDue() && !this.snapshotting) {
      this.snapshotting = this.saveSnapshot().finally(() => (this.snapshotting = undefined));
    }
  }

  /**
   * A start's fold split in two (fold-partition.ts): this thread reads the log, folds one half and
   * sends the other to a worker folding it alike, then adds the worker's half. Only when there is
   * much to fold and nothing folded yet (the halves start empty); false when it did not fold (the
   * caller folds in order). A fold whose halves turn out to depend on each other, or that fails
   * in any way, is thrown away and done again in order.
   */
  private async catchUpInHalves(head: number): Promise<boolean> {
    const from = this.seqValue;
    if (head - from < (this.opts.foldInHalvesFrom ?? FOLD_IN_HALVES_FROM) || this.vms.size > 0 || this.tasks.size > 0) return false;
    if (!this.persistent.every((p) => p.mergeState)) return false;
    const helper = FoldHelper.start();
    if (!helper) return false;
    const before = this.snapshot();
    const t0 = performance.now();
    this.half = new TaskReferences();
    let why: string | undefined;
    try {
      read: for await (const page of this.log.readPages(from, head)) {
        for (const m of page) {
          if (this.closing) return true;
          if (this.failure) break read;
          if (halfOf(m) === 0) this.apply(m);
          else if (!helper.offer(m)) await helper.send(m);
        }
      }
      const other = this.failure ? undefined : await helper.finish();
      why = this.failure ? this.failure.message : this.mergeHalf(other!, head);
    } catch (e) {
      why = (e as Error).message;
    } finally {
      this.half = undefined;
      await helper.close();
    }
    if (why === undefined) {
      if (this.opts.snapshots) this.sinceSnapshot += head - from;
      this.opts.logger?.(`read model: folded ${head - from} message(s) in two halves in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      return true;
    }
    this.opts.logger?.(`read model: the fold in two halves did not hold (${why}); folding seqs ${from + 1}..${head} in order`);
    this.resetTo(before);
    return false;
  }

  /** Adds the other half's fold; the reason it cannot (the halves share a VM or a task), or undefined. */
  private mergeHalf(other: HalfFold, head: number): string | undefined {
    const mine = this.half!;
    if (TaskReferences.cross(mine, other)) return 'a half met events of a task it holds no record of (the other half\'s, or one never created)';
    const s = other.snapshot;
    for (const vm of s.vms) if (this.vms.has(vm.id)) return `VM ${vm.id} is in both halves`;
    for (const t of s.tasks) if (this.tasks.has(t.id)) return `task ${t.id} is in both halves`;
    for (const p of this.persistent) if (p.name in s.observers && !p.mergeState!(s.observers[p.name])) return `the ${p.name} state of the halves overlaps`;
    for (const vm of s.vms) this.vms.set(vm.id, vm);
    for (const t of s.tasks) this.tasks.set(t.id, t);
    for (const [host, domid] of s.domids) if (domid > (this.domids.get(host) ?? 0)) this.domids.set(host, domid);
    for (const [host, state] of s.hosts) this.hosts.set(host, state);
    if (s.damage?.length) {
      for (const d of s.damage) this.reportDamage(d);
      this.damaged.push(...s.damage);
      this.damaged.sort((a, b) => a.seq - b.seq);
    }
    this.seqValue = head;
    return undefined;
  }

  /** Back to a state `snapshot()` took (a fold in halves that did not hold). */
  private resetTo(s: FoldSnapshot): void {
    this.vms.clear();
    this.tasks.clear();
    this.domids.clear();
    this.hosts.clear();
    this.damaged.length = 0;
    this.failure = undefined;
    this.takeState(s);
  }

  /**
   * This projection as one half of a start's fold (the fold-helper's worker): messages folded
   * with `apply`, the half's fold and task references taken with `result`.
   */
  foldHalf(): { apply(m: StoredMessage): void; result(): HalfFold } {
    const half = (this.half = new TaskReferences());
    return {
      apply: (m) => {
        this.apply(m);
        if (this.failure) throw this.failure;
      },
      result: () => ({ snapshot: this.snapshot(), foreign: half.foreign }),
    };
  }

  /**
   * Folds the log up to `head` as one read, not one tail delivery per message (each a promise to
   * await): a start over a long log spends its time folding, not passing messages along. A read
   * cut short (the store went away) leaves the rest to the tail, which waits for the store.
   */
  private async catchUp(head: number): Promise<void> {
    if (head <= this.seqValue) return;
    try {
      for await (const page of this.log.readPages(this.seqValue, head)) {
        for (const m of page) {
          if (this.failure || this.closing) return;
          if (m.seq > this.seqValue) this.apply(m);
        }
      }
    } catch (e) {
      this.opts.logger?.(`read model: reading the log from seq ${this.seqValue} stopped (${(e as Error).message}); following its tail from there`);
    }
  }

  private async repairGap(nextSeq: number): Promise<void> {
    const from = this.seqValue;
    let found = 0;
    for await (const missing of this.log.read(from, nextSeq - 1)) {
      if (this.failure) return;
      if (missing.seq <= this.seqValue) continue;
      this.apply(missing);
      found++;
    }
    if (found) this.opts.logger?.(`read model: read back ${found} message(s) the log tail skipped between seq ${from} and ${nextSeq}`);
  }

  private async scanCovered(afterSeq: number, toSeq: number): Promise<void> {
    try {
      for await (const d of findDamage(this.log, afterSeq, toSeq)) {
        if (this.closing) return;
        if (this.damaged.some((known) => known.seq === d.seq)) continue;
        noteDamage(this.foldState, d);
        this.reportDamage(d);
      }
    } catch (e) {
      if (!this.closing) this.opts.logger?.(`read model: the integrity scan of seqs ${afterSeq + 1}..${toSeq} stopped: ${(e as Error).message}`);
    }
  }

  private reportDamage(d: DamagedMessage): void {
    const quarantine = d.vm === undefined ? '' : `; VM ${d.vm} is quarantined (its commands are refused)`;
    this.opts.logger?.(`read model: the log is damaged at seq ${d.seq} (${d.stream}): ${d.error}${quarantine}`);
  }

  /** Folds one message of the log into the read model and tells the observers. */
  private apply(m: StoredMessage): void {
    let steps: FoldStep[] = [];
    const damagedBefore = this.damaged.length;
    try {
      if (m.stream.startsWith(HOST_STREAM_PREFIX)) this.applyHost(m);
      else {
        steps = foldStoredMessageSteps(this.foldState, m);
        for (const step of steps) this.noticeStep(step);
        if (this.half) for (const step of steps) this.half.note(step);
      }
    } catch (e) {
      // The fold stops at the last message it folded entirely (its seq does not advance, nor does
      // anything fold after it): /healthz reports it, the log says why, and every wait for a
      // later seq fails at once instead of answering from a read model that skipped a write.
      this.stop(m, e as Error);
      return;
    }
    if (this.damaged.length > damagedBefore) this.reportDamage(this.damaged.at(-1)!);
    if (steps.length) {
      for (const observe of this.observers) {
        try {
          observe(m.seq, steps);
        } catch (e) {
          // An observer's bug must not stop the fold, but it must not go unnoticed either.
          this.opts.logger?.(`read model: an observer failed at seq ${m.seq}: ${(e as Error).message}`);
        }
      }
    }
    this.advance(m.seq);
  }

  /** A host's settings and cancel triggers; a damaged message of them is lost (reported), not fatal. */
  private applyHost(m: StoredMessage): void {
    const read = readMessage(m);
    if (read.damage) return noteDamage(this.foldState, read.damage);
    const hostId = m.stream.slice(HOST_STREAM_PREFIX.length);
    let host = this.hosts.get(hostId) ?? emptyHost();
    try {
      for (const event of read.events) host = evolveHost(host, event);
    } catch (e) {
      return noteDamage(this.foldState, damagedMessage(m.stream, m.seq, e));
    }
    this.hosts.set(hostId, host);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.snapshotRetry);
    await this.subscription?.close();
    await this.scanning;
    await this.snapshotting;
    if (this.sinceSnapshot > 0) await this.saveSnapshot();
  }

  /** The fold as a snapshot at the current seq (captured synchronously, so it is consistent). */
  snapshot(): FoldSnapshot {
    return {
      seq: this.seqValue,
      vms: [...this.vms.values()],
      tasks: [...this.tasks.values()],
      domids: [...this.domids],
      hosts: [...this.hosts],
      observers: Object.fromEntries(this.persistent.map((p) => [p.name, p.exportState()])),
      damage: [...this.damaged],
    };
  }

  private restore(s: FoldSnapshot): void {
    this.takeState(s);
    this.restoredSeqValue = s.seq;
    const damaged = s.damage?.length ? `, ${s.damage.length} damaged message(s) of the log (see xenops verify)` : '';
    this.opts.logger?.(`read model: restored the snapshot at seq ${s.seq} (${s.vms.length} VM(s), ${s.tasks.length} task(s)${damaged})`);
  }

  /** Adds a snapshot's state to the (empty) fold and stands at its seq. */
  private takeState(s: FoldSnapshot): void {
    for (const vm of s.vms) this.vms.set(vm.id, vm);
    for (const t of s.tasks) this.tasks.set(t.id, t);
    for (const [host, domid] of s.domids) this.domids.set(host, domid);
    for (const [host, state] of s.hosts) this.hosts.set(host, state);
    for (const p of this.persistent) if (p.name in s.observers) p.importState(s.observers[p.name]);
    this.damaged.push(...(s.damage ?? []));
    this.seqValue = s.seq;
  }

  private saveSnapshot(): Promise<void> {
    const store = this.opts.snapshots;
    if (!store) return Promise.resolve();
    const snap = this.snapshot();
    const since = this.sinceSnapshot;
    this.sinceSnapshot = 0;
    clearTimeout(this.snapshotRetry);
    this.snapshotRetry = undefined;
    return saveFoldSnapshot(store, snap).then(
      () => {
        this.snapshotFailures = 0;
      },
      (e: unknown) => {
        this.opts.logger?.(`read model: cannot save a snapshot at seq ${snap.seq}: ${(e as Error).message}`);
        // The messages it covered are still not in any snapshot: a cut-off save is retried soon.
        this.sinceSnapshot += since;
        if (this.closing) return;
        const delay = Math.min(60_000, (this.opts.snapshotRetryMs ?? 2_000) * 2 ** this.snapshotFailures++);
        this.snapshotRetry = setTimeout(() => {
          this.snapshotRetry = undefined;
          if (this.closing || this.snapshotting || this.sinceSnapshot === 0) return;
          this.snapshotting = this.saveSnapshot().finally(() => (this.snapshotting = undefined));
        }, delay);
        this.snapshotRetry.unref();
      },
    );
  }

  private stop(m: StoredMessage, e: Error): void {
    this.failure = new ReadModelBehindError(`the read model stopped at seq ${this.seqValue}: cannot fold seq ${m.seq} (${m.stream}): ${e.message}`);
    this.opts.logger?.(`read model: cannot fold seq ${m.seq} (${m.stream}): ${e.message}; the read model stays at seq ${this.seqValue}`);
    const waiters = this.seqWaiters;
    this.seqWaiters = [];
    for (const w of waiters) w.reject(this.failure);
  }

  /**
   * Resolves once every message up to `seq` is folded (read-your-writes). Fails with a
   * `ReadModelBehindError` when the fold has stopped, or has not got there within `timeoutMs`
   * (default: the `waitTimeoutMs` option, 60 s; `Infinity`: no bound).
   */
  waitFor(seq: number, timeoutMs: number = this.opts.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    if (seq <= this.seqValue) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer =
        timeoutMs === Infinity
          ? undefined
          : setTimeout(() => {
              this.seqWaiters = this.seqWaiters.filter((w) => w !== waiter);
              reject(new ReadModelBehindError(`the read model did not reach seq ${seq} within ${timeoutMs / 1000} s (it is at seq ${this.seqValue})`));
            }, timeoutMs);
      this.seqWaiters.push(waiter);
    });
  }

  /**
   * Resolves when the task ends (Completed or Failed), even if it is destroyed in the same write;
   * `undefined` after `timeoutMs`.
   */
  waitForTaskEnd(taskId: string, timeoutMs: number): Promise<TaskOutcome | undefined> {
    const unclaimed = this.unclaimedOutcomes.get(taskId);
    if (unclaimed) {
      this.unclaimedOutcomes.delete(taskId);
      return Promise.resolve(unclaimed);
    }
    const task = this.tasks.get(taskId);
    if (task && task.status !== 'pending') return Promise.resolve({ task, seq: task.endedSeq ?? this.seqValue });
    return new Promise((resolve) => {
      const waiter = (outcome: TaskOutcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      const timer = setTimeout(() => {
        const rest = this.taskWaiters.get(taskId)?.filter((w) => w !== waiter);
        if (rest?.length) this.taskWaiters.set(taskId, rest);
        else this.taskWaiters.delete(taskId);
        resolve(undefined);
      }, timeoutMs);
      const list = this.taskWaiters.get(taskId) ?? [];
      list.push(waiter);
      this.taskWaiters.set(taskId, list);
    });
  }

  /** What the read model keeps beyond the fold: each host's newest domid, and the waiters of ending tasks. */
  private noticeStep({ event, taskBefore, taskAfter }: FoldStep): void {
    const { body } = event;
    if (body.type === 'DomainCreated' && body.domid > (this.domids.get(body.host) ?? 0)) this.domids.set(body.host, body.domid);
    if (!taskAfter || taskAfter.status === 'pending' || taskBefore?.status !== 'pending') return;
    const outcome = { task: taskAfter, seq: event.seq };
    const waiters = this.taskWaiters.get(taskAfter.id);
    if (waiters) {
      this.taskWaiters.delete(taskAfter.id);
      for (const w of waiters) w(outcome);
    } else if (taskAfter.operation.autoDestroy && this.caughtUp) {
      // Kept for a caller of this process (one that asked before its task ended): none exists
      // while the start folds the log, and a long log's start would churn the map per task.
      this.unclaimedOutcomes.set(taskAfter.id, outcome);
      if (this.unclaimedOutcomes.size > MAX_UNCLAIMED_OUTCOMES) {
        this.unclaimedOutcomes.delete(this.unclaimedOutcomes.keys().next().value!);
      }
    }
  }

  /**
   * The fold as it was at `seq` (API.md §9.6): the nearest checkpoint at or before it, plus the
   * messages after it. Older than every checkpoint: replayed from the start of the log.
   */
  async stateAt(seq: number): Promise<{ vms: Map<string, VmAggregate>; tasks: Map<string, TaskRecord> }> {
    let base: { seq: number; vms: ReadonlyMap<string, VmAggregate>; tasks: ReadonlyMap<string, TaskRecord> } | undefined;
    for (const c of this.checkpoints) if (c.seq <= seq && c.seq >= (base?.seq ?? 0)) base = c;
    // No checkpoint that old: from the start of the log (or, once truncated, its covering snapshot).
    base ??= await foldBase(this.log, this.opts.snapshots, seq);
    const state = { vms: new Map(base.vms), tasks: new Map(base.tasks) };
    if (base.seq < seq) for await (const m of this.log.read(base.seq, seq)) foldMessage(state, m.stream, m.seq, m.data);
    return state;
  }

  private snapshotDue(): boolean {
    return this.sinceSnapshot >= Math.max(this.opts.snapshotEvery ?? 5000, this.vms.size + this.tasks.size);
  }

  private checkpoint(seq: number): void {
    // A checkpoint copies the maps' entries: with many VMs, fewer of them (a quarter entry per message at most).
    if (++this.sinceCheckpoint < Math.max(CHECKPOINT_EVERY, (this.vms.size + this.tasks.size) >> 2)) return;
    this.sinceCheckpoint = 0;
    this.checkpoints.push({ seq, vms: new Map(this.vms), tasks: new Map(this.tasks) });
    let entries = this.checkpoints.reduce((n, c) => n + c.vms.size + c.tasks.size, 0);
    while (this.checkpoints.length > 1 && (this.checkpoints.length > MAX_CHECKPOINTS || entries > MAX_CHECKPOINT_ENTRIES)) {
      const dropped = this.checkpoints.shift()!;
      entries -= dropped.vms.size + dropped.tasks.size;
    }
  }

  private advance(seq: number): void {
    this.seqValue = seq;
    // Half a fold is no state of the log at any seq: no checkpoint of it.
    if (this.half) return;
    this.checkpoint(seq);
    if (this.opts.snapshots) {
      this.sinceSnapshot++;
      if (this.caughtUp && !this.snapshotting && this.snapshotDue()) this.snapshotting = this.saveSnapshot().finally(() => (this.snapshotting = undefined));
    }
    if (this.seqWaiters.length === 0) return;
    const ready = this.seqWaiters.filter((w) => w.seq <= seq);
    if (ready.length === 0) return;
    this.seqWaiters = this.seqWaiters.filter((w) => w.seq > seq);
    for (const w of ready) w.resolve();
  }
}
