/**
 * The embedded store's SQLite file: created whole, checked before use, opened under an exclusive
 * lock. Everything about the file itself lives here; embedded-stores.ts builds the ports on it.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, linkSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '@xenops/core';
import { recordedHolderPid, recordHolder } from './data-dir-lock.js';
import { DataDirInUseError, StoreCorruptError } from './store-errors.js';

type DB = Database.Database;

export const SCHEMA_VERSION = 1;

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

export const DB_FILE = 'xenops.db';

const SCHEMA = `
  CREATE TABLE events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    data   BLOB NOT NULL,
    msg_id TEXT
  );
  CREATE INDEX events_by_stream ON events (stream, seq);
  CREATE UNIQUE INDEX events_by_msg_id ON events (msg_id) WHERE msg_id IS NOT NULL;
  CREATE TABLE snapshots (
    key  TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL,
    data BLOB NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  INSERT INTO meta (key, value) VALUES ('schema_version', '${SCHEMA_VERSION}');
`;

/** The columns each table of a xenops store must have (a foreign database is refused). */
const REQUIRED_COLUMNS: Record<string, readonly string[]> = {
  events: ['seq', 'stream', 'data', 'msg_id'],
  snapshots: ['key', 'seq', 'data'],
  meta: ['key', 'value'],
};

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `<dataDir>/xenops.db` whole or not at all: the schema is built in a private file that is
 * then hard-linked into place (link fails if the name exists, so two processes creating at once
 * cannot replace each other's file). An existing `xenops.db` is therefore always one this program
 * finished creating, and anything else found under that name is refused, never reset.
 */
function createDatabase(dataDir: string, file: string): void {
  const tmp = join(dataDir, `${DB_FILE}.${process.pid}.new`);
  for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) rmSync(f, { force: true });
  try {
    const db = new Database(tmp);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(`BEGIN; ${SCHEMA} COMMIT;`);
    } finally {
      db.close(); // the last connection checkpoints the WAL into the file and removes it
    }
    fsyncPath(tmp);
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    fsyncPath(dataDir);
  } catch (err) {
    throw new StoreUnavailableError(`cannot create the embedded store ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Checks the file's SQLite header against its size before SQLite sees it, so that a file damaged
 * from outside gets a precise diagnosis (and SQLite never gets to touch it).
 */
export function checkHeader(file: string): void {
  let size: number;
  const header = Buffer.alloc(100);
  let got = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      size = fstatSync(fd).size;
      got = readSync(fd, header, 0, 100, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new StoreUnavailableError(`cannot read the embedded store ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (size === 0) throw new StoreCorruptError(file, 'truncated', 'is empty (0 bytes): it was truncated, or is not a xenops store');
  if (got < 100 || header.toString('latin1', 0, 16) !== 'SQLite format 3\0') {
    if (got < 100 && header.toString('latin1', 0, Math.min(got, 16)) === 'SQLite format 3\0'.slice(0, Math.min(got, 16))) {
      throw new StoreCorruptError(file, 'truncated', `is truncated: ${size} bytes, shorter than a SQLite header`);
    }
    throw new StoreCorruptError(file, 'not-sqlite', 'is not a SQLite database (its first 16 bytes are not the SQLite header)');
  }
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new StoreCorruptError(file, 'malformed', `has a damaged SQLite header (page size ${rawPageSize})`);
  }
  const pages = header.readUInt32BE(28);
  const headerSizeValid = pages > 0 && header.readUInt32BE(24) === header.readUInt32BE(92);
  if (headerSizeValid && size < pages * pageSize) {
    throw new StoreCorruptError(
      file,
      'truncated',
      `is truncated: its header says ${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes) but the file has ${size}`,
    );
  }
  if (size % pageSize !== 0) {
    throw new StoreCorruptError(file, 'truncated', `is truncated: ${size} bytes is not a whole number of ${pageSize}-byte pages`);
  }
}

/** SQLite's own verdict on a file it cannot read, as a typed error naming the file. */
export function corruptionOf(file: string, err: unknown): StoreCorruptError | undefined {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (code === 'SQLITE_NOTADB') return new StoreCorruptError(file, 'not-sqlite', `is not a SQLite database (${code})`, { cause: err });
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new StoreCorruptError(file, 'malformed', `is damaged: ${(err as Error).message} (${code})`, { cause: err });
  }
  return undefined;
}

/**
 * Confirms, by reading only, that an existing file is a xenops store this program understands,
 * before anything may write to it.
 */
export function validateStore(db: DB, file: string): void {
  const tables = new Set((db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).all() as { name: string }[]).map((r) => r.name));
  for (const [table, columns] of Object.entries(REQUIRED_COLUMNS)) {
    if (!tables.has(table)) {
      throw new StoreCorruptError(file, 'foreign', `is a SQLite database but not a xenops store (it has no "${table}" table)`);
    }
    const have = new Set((db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as { name: string }[]).map((r) => r.name));
    const missing = columns.filter((c) => !have.has(c));
    if (missing.length > 0) {
      throw new StoreCorruptError(file, 'foreign', `is not a xenops store: its "${table}" table lacks ${missing.join(', ')}`);
    }
  }
  const row = db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as { value: string } | undefined;
  const version = row && /^\d+$/.test(row.value) ? Number(row.value) : undefined;
  if (version === undefined) throw new StoreCorruptError(file, 'foreign', 'is not a xenops store: it records no schema version');
  if (version > SCHEMA_VERSION) {
    throw new StoreCorruptError(
      file,
      'newer-schema',
      `has schema version ${version}, newer than this program's (${SCHEMA_VERSION}): it was written by a newer xenops, which can still open it`,
    );
  }
}

function inUse(dataDir: string, file: string, cause: unknown): DataDirInUseError {
  return new DataDirInUseError(dataDir, recordedHolderPid(dataDir), `the database ${file} is locked`, { cause });
}

/**
 * Opens the SQLite file `<dataDir>/xenops.db`, creating it when the data dir has none.
 *
 * - An existing file must be a healthy xenops store: a damaged, truncated or foreign file, or one
 *   of a newer schema, is refused with a StoreCorruptError naming it, and left byte for byte as it
 *   was (it is checked by reading only before anything may write).
 * - `locking_mode = EXCLUSIVE` + a write transaction at open: the connection holds the file lock
 *   for its whole life, so a second process (or a second open in this process) is refused. The
 *   kernel drops the lock when the process dies, even on `kill -9`; `xenops.pid` only serves the
 *   error message.
 * - WAL + `synchronous = FULL`: an append is durable when its transaction returns.
 * - message ids are kept forever (a unique partial index on `events.msg_id`), which satisfies
 *   "remembered for at least two minutes".
 */
export function openDatabase(dataDir: string): DB {
  const file = join(dataDir, DB_FILE);
  // Opened here already: refused before any check touches the file, because closing any
  // descriptor of it would drop the POSIX lock this process's connection holds.
  const key = resolve(dataDir);
  if (openInThisProcess.has(key)) throw inUse(dataDir, file, undefined);
  if (!existsSync(file)) {
    // A log without its database: the database was removed, and a new one must not replay it.
    if (existsSync(`${file}-wal`) && statSync(`${file}-wal`).size > 0) {
      throw new StoreCorruptError(file, 'orphan-wal', `is missing but its write-ahead log ${file}-wal is present (was the database removed?)`);
    }
    createDatabase(dataDir, file);
  }
  checkHeader(file);
  let db: DB | undefined;
  try {
    db = new Database(file, { timeout: 250, fileMustExist: true });
    db.pragma('locking_mode = EXCLUSIVE');
    validateStore(db, file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // Takes the exclusive lock now rather than at the first append.
    db.exec('BEGIN IMMEDIATE; COMMIT;');
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* ignore */
    }
    if (err instanceof StoreUnavailableError) throw err;
    if (isBusy(err)) throw inUse(dataDir, file, err);
    throw corruptionOf(file, err) ?? new StoreUnavailableError(`cannot open the embedded store ${file}: ${(err as Error).message}`, { cause: err });
  }
  recordHolder(dataDir);
  openInThisProcess.add(key);
  return db;
}

/** Data dirs whose database this process has open (see openDatabase). */
const openInThisProcess = new Set<string>();

/** Call once the connection from openDatabase is closed. */
export function closedDatabase(dataDir: string): void {
  openInThisProcess.delete(resolve(dataDir));
}
