/**
 * Typed failures of the data dir and the embedded store. Each is a StoreUnavailableError (so
 * every existing handler still catches it) with a stable `code` for programs and a message that
 * names the file, says what is wrong and what the operator can do. They belong to this adapter,
 * not to the ports: only the SQLite-based data-dir lock and the SQLite file raise them (the
 * port-level StoreWriteError lives in core).
 */
import { StoreUnavailableError } from '@xenops/core';

/** Another live process holds the data dir's lock. */
export class DataDirInUseError extends StoreUnavailableError {
  override readonly name: string = 'DataDirInUseError';
  readonly code = 'DATA_DIR_IN_USE';
  constructor(
    readonly dataDir: string,
    /** The holder's pid as it recorded it, when known. */
    readonly holderPid: number | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `data dir ${dataDir} is in use by ${holderPid !== undefined ? `process ${holderPid}` : 'another process'} (${detail}); ` +
        `stop that process or choose another --data-dir`,
      options,
    );
  }
}

export type StoreCorruptReason = 'not-sqlite' | 'truncated' | 'malformed' | 'foreign' | 'newer-schema' | 'orphan-wal';

/**
 * The embedded store's file is damaged, or is not a xenops store: the service refuses to start and
 * leaves the file exactly as it found it.
 */
export class StoreCorruptError extends StoreUnavailableError {
  override readonly name: string = 'StoreCorruptError';
  readonly code = 'STORE_CORRUPT';
  constructor(
    readonly file: string,
    readonly reason: StoreCorruptReason,
    /** What is wrong with the file, e.g. "is truncated: …". */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `the embedded store ${file} ${detail}; it was left untouched: restore it from a backup ` +
        `(xenops restore FILE --data-dir DIR into an empty data dir) or move it away to start with an empty log`,
      options,
    );
  }
}
