/**
 * One service per data dir, in every mode: an exclusive lock on `<dir>/xenopsd.lock`.
 *
 * Node has no flock(2). The lock is SQLite's: a connection in `locking_mode = EXCLUSIVE` that has
 * written once holds a POSIX `fcntl` write lock on the file for as long as it stays open, and the
 * kernel drops such a lock when the process dies, `kill -9` included, so a crashed holder never
 * leaves a stale lock behind and nothing needs cleaning up by hand. better-sqlite3 is already a
 * dependency, SQLite's unix VFS keeps POSIX locks correct inside one process (a second open here is
 * refused too), and a pid file alone would be neither: it outlives `kill -9` and pids are reused.
 *
 * `xenops.pid` only serves the error message: the holder writes its pid there once it holds the
 * lock. Nothing else may open `xenopsd.lock` in a holding process (closing any descriptor of a file
 * drops the process's POSIX locks on it), which is why the pid lives in a file of its own.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '@xenops/core';
import { DataDirInUseError } from './store-errors.js';

export const LOCK_FILE = 'xenopsd.lock';
export const PID_FILE = 'xenops.pid';

export interface DataDirLock {
  readonly dataDir: string;
  /** Drops the lock (and the pid file, when it is still ours). Idempotent. */
  release(): void;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** The pid the holder of `dataDir` recorded, if any. */
export function recordedHolderPid(dataDir: string): number | undefined {
  try {
    const text = readFileSync(join(dataDir, PID_FILE), 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Records this process as the holder (atomically: a reader sees the old pid or the new one). */
export function recordHolder(dataDir: string): void {
  const tmp = join(dataDir, `${PID_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, `${process.pid}\n`);
  renameSync(tmp, join(dataDir, PID_FILE));
}

/** Removes the pid file if it names this process. */
export function forgetHolder(dataDir: string): void {
  if (recordedHolderPid(dataDir) === process.pid) rmSync(join(dataDir, PID_FILE), { force: true });
}

/**
 * Takes the data dir's lock or fails at once with DataDirInUseError (never waits: a second
 * service must refuse, not queue behind the first).
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, LOCK_FILE);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    // The write is what turns the connection's lock into an exclusive one that it then keeps.
    db.exec(`BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder; INSERT INTO holder VALUES (${process.pid}); COMMIT;`);
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* ignore */
    }
    if (isBusy(err)) throw new DataDirInUseError(dataDir, recordedHolderPid(dataDir), `its lock ${file} is held`, { cause: err });
    throw new StoreUnavailableError(`cannot lock data dir ${dataDir} (${file}): ${(err as Error).message}`, { cause: err });
  }
  const conn = db;
  try {
    recordHolder(dataDir);
  } catch (err) {
    conn.close();
    throw new StoreUnavailableError(`cannot record the holder of data dir ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
  let held = true;
  return {
    dataDir,
    release() {
      if (!held) return;
      held = false;
      forgetHolder(dataDir);
      conn.close();
    },
  };
}
