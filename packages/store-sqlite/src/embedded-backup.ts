/**
 * Backup and restore of the embedded store. The running service holds the database's exclusive
 * lock, so the copy is taken by the service itself with SQLite's online backup (the same
 * connection's appends carry on between its steps and are copied too), into a private file in the
 * data dir that is then streamed in the backup file format and removed. A restore writes the
 * database into an empty data dir, offline, and checks it before putting it in place.
 */
import { closeSync, createReadStream, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupFileError,
  BackupWriter,
  RestoreError,
  StoreUnavailableError,
  type BackupFile,
  type BackupHeader,
  type BackupOptions,
  type RestoreSummary,
  type StoreBackup,
} from '@xenops/core';
import { LOCK_FILE, lockDataDir, PID_FILE, type DataDirLock } from './data-dir-lock.js';
import { StoreCorruptError } from './store-errors.js';
import { checkHeader, DB_FILE, fsyncPath, SCHEMA_VERSION, validateStore } from './database-file.js';

type DB = Database.Database;

const CHUNK = 1 << 20;
/** Private copies in the data dir: a backup in progress, a restore being written. */
const BACKUP_COPY = `${DB_FILE}.backup-`;
const RESTORE_COPY = `${DB_FILE}.restore-`;
let copies = 0;

/** Removes copies left by a backup or restore that was killed (call with the store's lock held). */
export function removeStaleCopies(dataDir: string): void {
  for (const name of readdirSync(dataDir)) {
    if (name.startsWith(BACKUP_COPY) || name.startsWith(RESTORE_COPY)) rmSync(join(dataDir, name), { force: true });
  }
}

interface DatabaseFacts {
  readonly head: number;
  readonly first: number;
  readonly schemaVersion: number;
}

/** Runs SQLite's own check on a copy and reads its seqs. Throws with what is wrong. */
function inspectCopy(db: DB, file: string): DatabaseFacts {
  const check = db.pragma('quick_check', { simple: true }) as string;
  if (check !== 'ok') throw new StoreCorruptError(file, 'malformed', `fails SQLite's check: ${check}`);
  validateStore(db, file);
  const head = (db.prepare('SELECT max(seq) AS seq FROM events').get() as { seq: number | null }).seq ?? 0;
  const first = (db.prepare('SELECT min(seq) AS seq FROM events').get() as { seq: number | null }).seq ?? head + 1;
  const version = Number((db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as { value: string }).value);
  return { head, first, schemaVersion: version };
}

/** A consistent copy of the live database as a backup file. */
export async function backupEmbedded(db: DB, dataDir: string, opts: BackupOptions): Promise<StoreBackup> {
  const copy = join(dataDir, `${BACKUP_COPY}${process.pid}-${++copies}`);
  let facts: DatabaseFacts;
  try {
    await db.backup(copy);
    const c = new Database(copy, { fileMustExist: true });
    try {
      // One self-contained file: no write-ahead log beside it.
      c.pragma('journal_mode = DELETE');
      facts = inspectCopy(c, copy);
    } finally {
      c.close();
    }
  } catch (err) {
    rmSync(copy, { force: true });
    rmSync(`${copy}-journal`, { force: true });
    const code = (err as { code?: unknown }).code;
    const why = code === 'SQLITE_FULL' ? `the data dir ${dataDir} has no room for the copy (${code})` : (err as Error).message;
    throw new StoreUnavailableError(`backup failed: cannot copy the embedded store into ${copy}: ${why}`, { cause: err });
  }
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    mode: 'embedded',
    prefix: null,
    head_seq: facts.head,
    first_seq: facts.first,
    created: new Date().toISOString(),
    writer: opts.writer,
    embedded: { schema_version: facts.schemaVersion, bytes: statSync(copy).size },
  };
  async function* bytes(): AsyncGenerator<Uint8Array> {
    try {
      const w = new BackupWriter();
      yield w.header(header);
      for await (const chunk of createReadStream(copy, { highWaterMark: CHUNK })) yield w.data(chunk as Buffer);
      yield w.end();
    } finally {
      rmSync(copy, { force: true });
    }
  }
  return { header, bytes: bytes() };
}

/** What an interrupted restore (or a refused one) leaves behind: not content, so not in the way. */
function isRestoreLeftover(name: string): boolean {
  return name === LOCK_FILE || name === `${LOCK_FILE}-journal` || name === PID_FILE || name.startsWith(RESTORE_COPY);
}

/**
 * Takes a data dir for a restore: absent (created) or empty, and not in use. Leftovers of an
 * earlier restore that did not finish are removed; anything else means the directory is not empty.
 */
function takeEmptyDataDir(dataDir: string): DataDirLock {
  if (existsSync(dataDir)) {
    if (!statSync(dataDir).isDirectory()) throw new RestoreError('TARGET_NOT_EMPTY', `${dataDir} exists and is not a directory`);
  } else mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(dataDir);
  const entries = readdirSync(dataDir).filter((name) => !isRestoreLeftover(name));
  if (entries.length > 0) {
    lock.release();
    const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? ', …' : '');
    throw new RestoreError(
      'TARGET_NOT_EMPTY',
      `data dir ${dataDir} is not empty (it holds ${shown}): a restore never overwrites; choose a new or empty directory`,
    );
  }
  for (const name of readdirSync(dataDir)) if (name.startsWith(RESTORE_COPY)) rmSync(join(dataDir, name), { force: true });
  return lock;
}

/**
 * Writes the database of an embedded backup into `dataDir` (absent or empty), checks it and puts
 * it in place as `xenops.db`; a service started on that data dir then comes up with the backup's
 * log and snapshots.
 */
export async function restoreEmbeddedBackup(backup: BackupFile, dataDir: string, onBytes?: (written: number) => void): Promise<RestoreSummary> {
  if (backup.header.mode !== 'embedded') {
    throw new RestoreError('WRONG_MODE', `${backup.file} is a backup of the NATS stream of prefix ${backup.header.prefix}, not of an embedded store: restore it with --nats URL`);
  }
  const lock = takeEmptyDataDir(dataDir);
  const file = join(dataDir, DB_FILE);
  const tmp = join(dataDir, `${RESTORE_COPY}${process.pid}`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      for await (const chunk of backup.payload(onBytes)) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    let facts: DatabaseFacts;
    try {
      checkHeader(tmp);
      const db = new Database(tmp, { fileMustExist: true });
      try {
        facts = inspectCopy(db, tmp);
        db.pragma('journal_mode = WAL');
      } finally {
        db.close();
      }
    } catch (err) {
      const detail = err instanceof StoreCorruptError ? err.detail : (err as Error).message;
      throw new BackupFileError(backup.file, 'corrupt', `${backup.file} holds a damaged database: it ${detail}`, { cause: err });
    }
    if (facts.head !== backup.header.head_seq || facts.first !== backup.header.first_seq) {
      throw new BackupFileError(
        backup.file,
        'corrupt',
        `${backup.file} is inconsistent: its header says seqs ${backup.header.first_seq}..${backup.header.head_seq}, its database holds ${facts.first}..${facts.head}`,
      );
    }
    if (facts.schemaVersion > SCHEMA_VERSION) {
      throw new RestoreError('RESTORE_FAILED', `${backup.file} holds a store of schema version ${facts.schemaVersion}, newer than this xenops reads: use a newer xenops`);
    }
    fsyncPath(tmp);
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RestoreError('TARGET_NOT_EMPTY', `${file} appeared while restoring (was a service started on ${dataDir}?): nothing was overwritten`);
      }
      throw err;
    }
    fsyncPath(dataDir);
    return { target: file, first_seq: facts.first, head_seq: facts.head };
  } finally {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-wal`, { force: true });
    rmSync(`${tmp}-shm`, { force: true });
    lock.release();
  }
}
