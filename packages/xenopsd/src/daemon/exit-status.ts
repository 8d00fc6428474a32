/** xenopsd's exit statuses (documented in `xenopsd --help` and README). */
import { BackupFileError, NatsAuthenticationError, NatsUnreachableError, RestoreError, StorePermissionError } from '@xenops/core';
import { DataDirInUseError, StoreCorruptError } from '@xenops/store-sqlite';

export const ExitStatus = {
  OK: 0,
  /** Could not start (other than below), or stopped with an error. */
  FAILED: 1,
  /** A mistake in the command line or configuration. */
  CONFIG: 2,
  /** NATS refused access: credentials, TLS, or permissions for the prefix's resources. */
  NATS_ACCESS: 3,
  /** No NATS server could be reached. */
  NATS_UNREACHABLE: 4,
  /** The embedded store's file, or the backup to restore, is damaged or not ours (sysexits EX_DATAERR). */
  STORE_CORRUPT: 65,
  /** The backup to restore does not exist (sysexits EX_NOINPUT). */
  BACKUP_MISSING: 66,
  /** The restore's target holds something: a restore never overwrites (sysexits EX_CANTCREAT). */
  TARGET_NOT_EMPTY: 73,
  /** Another xenopsd holds the data dir (sysexits EX_TEMPFAIL: retry once it stops). */
  DATA_DIR_IN_USE: 75,
} as const;

/** The status for an error that stopped xenopsd from starting, or a one-shot action. */
export function startFailureStatus(e: unknown): number {
  if (e instanceof BackupFileError) return e.problem === 'missing' ? ExitStatus.BACKUP_MISSING : ExitStatus.STORE_CORRUPT;
  if (e instanceof RestoreError) return e.code === 'WRONG_MODE' ? ExitStatus.CONFIG : e.code === 'TARGET_NOT_EMPTY' ? ExitStatus.TARGET_NOT_EMPTY : ExitStatus.FAILED;
  if (e instanceof NatsAuthenticationError || e instanceof StorePermissionError) return ExitStatus.NATS_ACCESS;
  if (e instanceof NatsUnreachableError) return ExitStatus.NATS_UNREACHABLE;
  if (e instanceof DataDirInUseError) return ExitStatus.DATA_DIR_IN_USE;
  if (e instanceof StoreCorruptError) return ExitStatus.STORE_CORRUPT;
  return ExitStatus.FAILED;
}
