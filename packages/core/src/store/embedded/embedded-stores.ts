import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  ConcurrencyError,
  StoreUnavailableError,
  type AppendRequest,
  type EventLog,
  type StoredMessage,
  type Subscription,
} from '../event-log.js';
import type { Snapshot, SnapshotStore } from '../snapshot-store.js';
import type { EmbeddedStoreOptions, Stores } from '../stores.js';
import { InProcessCommandBus } from '../in-process-bus.js';
import { Delivery } from '../tail-util.js';

type DB = Database.Database;

const PAGE = 512;
const SCHEMA_VERSION = 1;

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

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/**
 * Opens the SQLite file `<dataDir>/xenops.db`.
 *
 * - `locking_mode = EXCLUSIVE` + a write at open: the connection holds the file lock for its whole
 *   life, so a second process (or a second open in this process) is refused. The kernel drops the
 *   lock when the process dies, even on `kill -9`; `xenops.pid` only serves the error message.
 * - WAL + `synchronous = FULL`: an append is durable when its transaction returns.
 * - message ids are kept forever (a unique partial index on `events.msg_id`), which satisfies
 *   "remembered for at least two minutes".
 */
function openDatabase(dataDir: string): DB {
  const file = join(dataDir, 'xenops.db');
  const pidFile = join(dataDir, 'xenops.pid');
  let db: DB | undefined;
  try {
    db = new Database(file, { timeout: 250 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`
      BEGIN IMMEDIATE;
      CREATE TABLE IF NOT EXISTS events (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        stream TEXT NOT NULL,
        data   BLOB NOT NULL,
        msg_id TEXT
      );
      CREATE INDEX IF NOT EXISTS events_by_stream ON events (stream, seq);
      CREATE UNIQUE INDEX IF NOT EXISTS events_by_msg_id ON events (msg_id) WHERE msg_id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS snapshots (
        key  TEXT PRIMARY KEY,
        seq  INTEGER NOT NULL,
        data BLOB NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '${SCHEMA_VERSION}');
      COMMIT;
    `);
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* ignore */
    }
    if (isBusy(err)) {
      let holder = 'another process';
      try {
        const pid = readFileSync(pidFile, 'utf8').trim();
        if (pid) holder = `process ${pid}`;
      } catch {
        /* no pid file */
      }
      throw new StoreUnavailableError(
        `data dir ${dataDir} is in use by ${holder} (the database ${file} is locked); ` +
          `stop it or choose another --data-dir`,
        { cause: err },
      );
    }
    throw new StoreUnavailableError(`cannot open the embedded store ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const version = Number(
    (db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as { value: string }).value,
  );
  if (version > SCHEMA_VERSION) {
    db.close();
    throw new StoreUnavailableError(`${file} has schema version ${version}, newer than this program (${SCHEMA_VERSION})`);
  }
  writeFileSync(pidFile, `${process.pid}\n`);
  return db;
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

  constructor(private readonly db: DB) {
    this.stmt = {
      byMsgId: db.prepare<[string], { seq: number }>(`SELECT seq FROM events WHERE msg_id = ?`),
      lastOf: db.prepare<[string], { seq: number | null }>(`SELECT max(seq) AS seq FROM events WHERE stream = ?`),
      head: db.prepare<[], { seq: number | null }>(`SELECT max(seq) AS seq FROM events`),
      first: db.prepare<[], { seq: number | null }>(`SELECT min(seq) AS seq FROM events`),
      truncate: db.prepare<[number]>(`DELETE FROM events WHERE seq < ?`),
      insert: db.prepare<[string, Buffer, string | null]>(`INSERT INTO events (stream, data, msg_id) VALUES (?, ?, ?)`),
      page: db.prepare<[number, number, number], EventRow>(
        `SELECT seq, stream, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
      ),
      pageOpen: db.prepare<[number, number], EventRow>(`SELECT seq, stream, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?`),
      streamPage: db.prepare<[string, number, number, number], EventRow>(
        `SELECT seq, stream, data FROM events WHERE stream = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
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
    if (this.closed) {
      for (const b of batch) b.reject(new StoreUnavailableError('the embedded event log is closed'));
      return;
    }
    const outcomes: ({ seq: number } | { err: unknown })[] = [];
    try {
      this.begin.run();
      try {
        for (const { req } of batch) {
          try {
            outcomes.push({ seq: this.applyOne(req) });
          } catch (err) {
            if (!(err instanceof ConcurrencyError)) throw err;
            outcomes.push({ err });
          }
        }
        this.commit.run();
      } catch (err) {
        if (this.db.inTransaction) this.rollback.run();
        throw err;
      }
    } catch (err) {
      const e = new StoreUnavailableError(`append failed: ${(err as Error).message}`, { cause: err });
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, i) => {
      const o = outcomes[i]!;
      if ('seq' in o) b.resolve(o.seq);
      else b.reject(o.err);
    });
    this.notify();
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
    this.stmt.truncate.run(Math.min(seq, this.headSync()));
  }

  async lastSeqOf(stream: string): Promise<number> {
    this.check();
    return this.stmt.lastOf.get(stream)?.seq ?? 0;
  }

  read(afterSeq: number, toSeq?: number): AsyncIterable<StoredMessage> {
    this.check();
    const end = toSeq ?? this.headSync();
    const self = this;
    return (async function* () {
      let cursor = afterSeq;
      while (cursor < end) {
        self.check();
        const rows = self.stmt.page.all(cursor, end, PAGE);
        for (const r of rows) yield toMessage(r);
        if (rows.length < PAGE) return;
        cursor = rows[rows.length - 1]!.seq;
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
    const delivery = new Delivery();
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

  constructor(db: DB) {
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
    this.stmt.put.run(key, snapshot.seq, toBuffer(snapshot.data));
  }

  async delete(key: string): Promise<void> {
    this.check();
    this.stmt.del.run(key);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export async function openEmbeddedStores(opts: EmbeddedStoreOptions): Promise<Stores> {
  try {
    mkdirSync(opts.dataDir, { recursive: true });
  } catch (err) {
    throw new StoreUnavailableError(`cannot create data dir ${opts.dataDir}: ${(err as Error).message}`, { cause: err });
  }
  const db = openDatabase(opts.dataDir);
  const log = new EmbeddedEventLog(db);
  const snapshots = new EmbeddedSnapshotStore(db);
  const bus = new InProcessCommandBus();
  let closing: Promise<void> | undefined;
  return {
    mode: 'embedded',
    log,
    snapshots,
    bus,
    close: () =>
      (closing ??= (async () => {
        await bus.close();
        await log.close();
        await snapshots.close();
        db.close();
        try {
          const pidFile = join(opts.dataDir, 'xenops.pid');
          if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile, { force: true });
        } catch {
          /* already gone */
        }
      })()),
  };
}
