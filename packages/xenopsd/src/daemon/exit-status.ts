/** xenopsd's exit statuses (documented in `xenopsd --help` and README). */
import { DataDirInUseError, NatsAuthenticationError, NatsUnreachableError, StoreCorruptError, StorePermissionError } from '@xenops/core';

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
  /** The embedded store's file is damaged or not a xenops store (sysexits EX_DATAERR). */
  STORE_CORRUPT: 65,
  /** Another xenopsd holds the data dir (sysexits EX_TEMPFAIL: retry once it stops). */
  DATA_DIR_IN_USE: 75,
} as const;

/** The status for an error that stopped xenopsd from starting. */
export function startFailureStatus(e: unknown): number {
  if (e instanceof NatsAuthenticationError || e instanceof StorePermissionError) return ExitStatus.NATS_ACCESS;
  if (e instanceof NatsUnreachableError) return ExitStatus.NATS_UNREACHABLE;
  if (e instanceof DataDirInUseError) return ExitStatus.DATA_DIR_IN_USE;
  if (e instanceof StoreCorruptError) return ExitStatus.STORE_CORRUPT;
  return ExitStatus.FAILED;
}
