import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  ConcurrencyError,
  Delivery,
  InMemoryHostRegistry,
  InMemoryLeases,
  InProcessCommandBus,
  messagesOfPages,
  stderrStoreLogger,
  StoreUnavailableError,
  StoreWriteError,
  type AppendRequest,
  type EventLog,
  type Snapshot,
  type SnapshotStore,
  type StoredMessage,
  type Stores,
  type StoreLogger,
  type Subscription,
} from '@xenops/core';
import { forgetHolder } from './data-dir-lock.js';
import { closedDatabase, DB_FILE, openDatabase } from './database-file.js';
import { backupEmbedded, removeStaleCopies } from './embedded-backup.js';
import { isStorageFailure, sqliteWriteError } from './sqlite-write-error.js';

type DB = Database.Database;

const PAGE = 512;
/**
 * Rows a `read` takes per query: a start folds the whole log through `read`, where per-query and
 * per-row-object costs add up. Not larger: a page's rows live until the fold has passed them all,
 * and 4,096 of them outlived young-generation collections (a 1,000,000-event start: ~5 % slower).
 */
const READ_PAGE = 512;

interface EventRow {
  seq: number;
  stream: string;
  data: Buffer;
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function toBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function toMessage(r: EventRow): StoredMessage {
  return { seq: r.seq, stream: r.stream, data: toBytes(r.data) };
}


class EmbeddedEventLog implements EventLog {
  private closed = false;
  private readonly waiters = new Set<() => void>();
  private readonly tails = new Set<{ close(): Promise<void> }>();
  private readonly stmt;
  private readonly begin;
  private readonly commit;
  private readonly rollback;
  /** Appends waiting for the next group commit. */
  private queue: { req: AppendRequest; resolve: (seq: number) => void; reject: (err: unknown) => void }[] = [];
  /** Why the last write failed for want of storage (disk full, read-only); cleared by the next write that succeeds. */
  private writeFailure: StoreUnavailableError | undefined;
  /** Set after an I/O error at commit: the outcome of that commit is unknown, so no later write is attempted. */
  private broken: StoreUnavailableError | undefined;
  private lastProbeMs = 0;
  /** When this process last committed an append (the only writer of the file). */
  private lastAppendMs: number | undefined;

  constructor(
    private readonly db: DB,
    private readonly file: string,
    private readonly log: StoreLogger,
  ) {
    this.stmt = {
      byMsgId: db.prepare<[string], { seq: number }>(`SELECT seq FROM events WHERE msg_id = ?`),
      lastOf: db.prepare<[string], { seq: number | null }>(`SELECT max(seq) AS seq FROM events WHERE stream = ?`),
      head: db.prepare<[], { seq: number | null }>(`SELECT max(seq) AS seq FROM events`),
      first: db.prepare<[], { seq: number | null }>(`SELECT min(seq) AS seq FROM events`),
      truncate: db.prepare<[number]>(`DELETE FROM events WHERE seq < ?`),
      insert: db.prepare<[string, Buffer, string | null]>(`INSERT INTO events (stream, data, msg_id) VALUES (?, ?, ?)`),
      // Rows as arrays: no object with named keys per row, which a long read makes by the million.
      page: db
        .prepare<[number, number, number], [number, string, Buffer]>(`SELECT seq, stream, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`)
        .raw(true),
      pageOpen: db.prepare<[number, number], EventRow>(`SELECT seq, stream, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?`),
      streamPage: db.prepare<[string, number, number, number], EventRow>(
        `SELECT seq, stream, data FROM events WHERE stream = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
      ),
      probe: db.prepare<[string]>(
        `INSERT INTO meta (key, value) VALUES ('write_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
    };
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
  }

  /** Checks and inserts one append inside the open transaction; writes nothing when it throws. */
  private applyOne(req: AppendRequest): number {
    if (req.messageId !== undefined) {
      const dup = this.stmt.byMsgId.get(req.messageId);
      if (dup) return dup.seq;
    }
    if (req.expectedLastSeq !== undefined) {
      const last = this.stmt.lastOf.get(req.stream)?.seq ?? 0;
      if (last !== req.expectedLastSeq) throw new ConcurrencyError(req.stream, req.expectedLastSeq);
    }
    const info = this.stmt.insert.run(req.stream, toBuffer(req.data), req.messageId ?? null);
    return Number(info.lastInsertRowid);
  }

  /**
   * Group commit: every append issued in the same macrotask shares one transaction and one fsync.
   * Each append is still checked on its own (a ConcurrencyError rejects only that append and
   * writes nothing for it), and no promise resolves before the COMMIT has returned.
   */
  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.closed || this.broken) {
      const e = this.broken ?? new StoreUnavailableError('the embedded event log is closed');
      for (const b of batch) b.reject(e);
      return;
    }
    const outcomes: ({ seq: number } | { err: unknown })[] = [];
    try {
      this.inTransaction(() => {
        for (const { req } of batch) {
          try {
            outcomes.push({ seq: this.applyOne(req) });
          } catch (err) {
            if (!(err instanceof ConcurrencyError)) throw err;
            outcomes.push({ err });
          }
        }
      });
    } catch (err) {
      // Nothing of a batch whose COMMIT failed is acknowledged: every append of it is rejected.
      const e = this.failedWrite(batch.length === 1 ? 'append' : `group of ${batch.length} appends`, err);
      for (const b of batch) b.reject(e);
      return;
    }
    this.writeFailure = undefined;
    this.lastAppendMs = Date.now();
    batch.forEach((b, i) => {
      const o = outcomes[i]!;
      if ('seq' in o) b.resolve(o.seq);
      else b.reject(o.err);
    });
    this.notify();
  }

  /** Runs `body` in a write transaction; on any failure rolls back (if SQLite has not already) and rethrows. */
  private inTransaction(body: () => void): void {
    this.begin.run();
    try {
      body();
      this.commit.run();
    } catch (err) {
      // SQLite rolls back by itself after some failures (SQLITE_FULL, SQLITE_IOERR) and not others.
      if (this.db.inTransaction) {
        try {
          this.rollback.run();
        } catch {
          /* the first error is the one to report */
        }
      }
      throw err;
    }
  }

  /** Records a failed write for health and returns the error to give its callers. */
  private failedWrite(what: string, err: unknown): StoreUnavailableError {
    const e = sqliteWriteError(this.file, what, err);
    if (isStorageFailure(err)) {
      this.writeFailure = e;
      if (e instanceof StoreWriteError && e.failure === 'io-error') this.broken = e;
    }
    return e;
  }

  /**
   * Why an append cannot succeed now, or undefined. After a failure for want of storage, a small
   * real write (at most one a second) tells whether space has come back, so health recovers even
   * when nobody is appending.
   */
  async writeProblem(): Promise<string | undefined> {
    if (this.broken) return this.broken.message;
    if (!this.writeFailure || this.closed) return this.writeFailure?.message;
    const now = Date.now();
    if (now - this.lastProbeMs >= 1000) {
      this.lastProbeMs = now;
      try {
        this.inTransaction(() => this.stmt.probe.run(new Date(now).toISOString()));
        this.writeFailure = undefined;
      } catch (err) {
        // The failed append's own words stay the reason while the probe fails the same way.
        const before = this.writeFailure;
        const e = this.failedWrite('health probe write', err);
        if (before instanceof StoreWriteError && e instanceof StoreWriteError && e.failure === before.failure) this.writeFailure = before;
      }
    }
    return this.writeFailure?.message;
  }

  async lastAppendTime(): Promise<number | undefined> {
    return this.lastAppendMs;
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the embedded event log is closed');
  }

  async append(req: AppendRequest): Promise<number> {
    this.check();
    if (typeof req.stream !== 'string' || req.stream === '') throw new TypeError('append: stream must be a non-empty string');
    return new Promise<number>((resolve, reject) => {
      // setImmediate, not a microtask: every append issued while this macrotask runs (including
      // the continuations of tasks whose previous append just committed) joins the same COMMIT.
      if (this.queue.length === 0) setImmediate(() => this.flush());
      this.queue.push({ req, resolve, reject });
    });
  }

  private notify(): void {
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  headSync(): number {
    return this.stmt.head.get()?.seq ?? 0;
  }

  async head(): Promise<number> {
    this.check();
    return this.headSync();
  }

  async firstSeq(): Promise<number> {
    this.check();
    return this.stmt.first.get()?.seq ?? this.headSync() + 1;
  }

  async truncateBefore(seq: number): Promise<void> {
    this.check();
    // Keep the newest message: max(seq) is the head, and AUTOINCREMENT never reuses a seq.
    try {
      this.stmt.truncate.run(Math.min(seq, this.headSync()));
    } catch (err) {
      throw this.failedWrite('truncation', err);
    }
  }

  async lastSeqOf(stream: string): Promise<number> {
    this.check();
    return this.stmt.lastOf.get(stream)?.seq ?? 0;
  }

  read(afterSeq: number, toSeq?: number): AsyncIterable<StoredMessage> {
    return messagesOfPages(this.readPages(afterSeq, toSeq));
  }

  readPages(afterSeq: number, toSeq?: number): AsyncIterable<readonly StoredMessage[]> {
    this.check();
    const end = toSeq ?? this.headSync();
    const self = this;
    return (async function* () {
      let cursor = afterSeq;
      while (cursor < end) {
        self.check();
        const rows = self.stmt.page.all(cursor, end, READ_PAGE);
        if (rows.length === 0) return;
        yield rows.map(([seq, stream, data]): StoredMessage => ({ seq, stream, data: toBytes(data) }));
        if (rows.length < READ_PAGE) return;
        cursor = rows[rows.length - 1]![0];
      }
    })();
  }

  readStream(stream: string, afterSeq = 0): AsyncIterable<StoredMessage> {
    this.check();
    const end = this.stmt.lastOf.get(stream)?.seq ?? 0;
    const self = this;
    return (async function* () {
      let cursor = afterSeq;
      while (cursor < end) {
        self.check();
        const rows = self.stmt.streamPage.all(stream, cursor, end, PAGE);
        for (const r of rows) yield toMessage(r);
        if (rows.length < PAGE) return;
        cursor = rows[rows.length - 1]!.seq;
      }
    })();
  }

  tail(afterSeq: number, handler: (m: StoredMessage) => void | Promise<void>): Subscription {
    this.check();
    const delivery = new Delivery(this.log);
    let stopped = false;
    let wake: (() => void) | undefined;
    const loop = (async () => {
      let cursor = afterSeq;
      // Let the caller finish setting up before the first delivery.
      await Promise.resolve();
      while (!stopped && !this.closed) {
        // The query and the waiter registration run in one synchronous step, and appends notify
        // synchronously after their commit: no append can fall between them.
        const rows = this.stmt.pageOpen.all(cursor, PAGE);
        if (rows.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            this.waiters.add(resolve);
          });
          continue;
        }
        for (const r of rows) {
          if (stopped) return;
          await delivery.deliver(handler, toMessage(r));
          cursor = r.seq;
        }
      }
    })();
    const sub = {
      close: async (): Promise<void> => {
        if (!stopped) {
          stopped = true;
          if (wake) {
            this.waiters.delete(wake);
            wake();
          }
          this.tails.delete(sub);
        }
        // A handler is running (maybe the caller): later deliveries are stopped; do not wait.
        if (!delivery.active) await loop;
      },
    };
    this.tails.add(sub);
    return sub;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.tails].map((t) => t.close()));
    this.closed = true;
    this.notify();
  }
}

class EmbeddedSnapshotStore implements SnapshotStore {
  private closed = false;
  private readonly stmt;

  constructor(
    db: DB,
    private readonly file: string,
  ) {
    this.stmt = {
      get: db.prepare<[string], { seq: number; data: Buffer }>(`SELECT seq, data FROM snapshots WHERE key = ?`),
      put: db.prepare<[string, number, Buffer]>(
        `INSERT INTO snapshots (key, seq, data) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, data = excluded.data WHERE excluded.seq >= snapshots.seq`,
      ),
      del: db.prepare<[string]>(`DELETE FROM snapshots WHERE key = ?`),
    };
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the embedded snapshot store is closed');
  }

  async get(key: string): Promise<Snapshot | undefined> {
    this.check();
    const r = this.stmt.get.get(key);
    return r ? { seq: r.seq, data: toBytes(r.data) } : undefined;
  }

  async put(key: string, snapshot: Snapshot): Promise<void> {
    this.check();
    try {
      this.stmt.put.run(key, snapshot.seq, toBuffer(snapshot.data));
    } catch (err) {
      throw sqliteWriteError(this.file, `snapshot ${key}`, err);
    }
  }

  async delete(key: string): Promise<void> {
    this.check();
    try {
      this.stmt.del.run(key);
    } catch (err) {
      throw sqliteWriteError(this.file, `deletion of snapshot ${key}`, err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface EmbeddedStoreOptions {
  /** Directory holding the SQLite database (created if missing). */
  readonly dataDir: string;
  /** Where the store reports what has nobody else to tell, e.g. a failing tail handler (default: stderr). */
  readonly log?: StoreLogger;
}

export async function openEmbeddedStores(opts: EmbeddedStoreOptions): Promise<Stores> {
  try {
    mkdirSync(opts.dataDir, { recursive: true });
  } catch (err) {
    throw new StoreUnavailableError(`cannot create data dir ${opts.dataDir}: ${(err as Error).message}`, { cause: err });
  }
  const db = openDatabase(opts.dataDir);
  removeStaleCopies(opts.dataDir);
  const file = join(opts.dataDir, DB_FILE);
  const log = new EmbeddedEventLog(db, file, opts.log ?? stderrStoreLogger);
  const snapshots = new EmbeddedSnapshotStore(db, file);
  const bus = new InProcessCommandBus();
  let closing: Promise<void> | undefined;
  /** Online backups copying from the connection: it must outlive them. */
  const copying = new Set<Promise<unknown>>();
  return {
    mode: 'embedded',
    log,
    snapshots,
    bus,
    // One process, one host (API.md §9.7); the data dir lock makes it the only gateway too.
    hosts: new InMemoryHostRegistry(),
    leases: new InMemoryLeases(),
    backup: async (backupOpts) => {
      if (closing) throw new StoreUnavailableError('the embedded store is closed');
      const p = backupEmbedded(db, opts.dataDir, backupOpts);
      copying.add(p);
      try {
        return await p;
      } finally {
        copying.delete(p);
      }
    },
    close: () =>
      (closing ??= (async () => {
        await bus.close();
        await log.close();
        await snapshots.close();
        await Promise.allSettled([...copying]);
        db.close();
        closedDatabase(opts.dataDir);
        try {
          forgetHolder(opts.dataDir);
        } catch {
          /* already gone */
        }
      })()),
  };
}
