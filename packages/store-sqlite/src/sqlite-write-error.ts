/** What a failed SQLite write means for the embedded store, as a StoreWriteError. */
import { StoreUnavailableError, StoreWriteError } from '@xenops/core';

function sqliteCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/**
 * Whether the error is one the storage itself raised (full, failing or read-only), as opposed to
 * a refusal of one request (a constraint, a bad argument).
 */
export function isStorageFailure(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY');
}

/**
 * `what` names the write (e.g. "append"). A full disk is reported as such (SQLite maps ENOSPC to
 * SQLITE_FULL): nothing of the failed transaction was stored and the store stays usable. After an
 * I/O error SQLite cannot say whether the commit reached the disk, hence the advice to restart.
 */
export function sqliteWriteError(file: string, what: string, err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const code = sqliteCode(err);
  const options = { cause: err, code: code || 'STORE_WRITE_FAILED' };
  if (code === 'SQLITE_FULL') {
    return new StoreWriteError(
      'disk-full',
      `the embedded store cannot write: disk full (${code}) on ${file}; the ${what} was not stored and nothing acknowledged ` +
        `is lost: free space on that file system and writes resume`,
      options,
    );
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return new StoreWriteError(
      'io-error',
      `the embedded store cannot write: I/O error (${code}) on ${file}; whether the failed ${what} reached the disk is ` +
        `unknown, so the store accepts no more writes: check the disk, then restart xenopsd`,
      options,
    );
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new StoreWriteError(
      'read-only',
      `the embedded store cannot write: ${file} is read-only (${code}); the ${what} was not stored: make it writable`,
      options,
    );
  }
  return new StoreWriteError('other', `${what} failed: ${(err as Error).message ?? String(err)}`, options);
}
