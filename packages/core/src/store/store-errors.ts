/**
 * A port-level failure of every durable store: an append that could not be made durable. Each
 * adapter maps its own causes (SQLite's SQLITE_FULL, an I/O error...) onto these failure classes,
 * so that callers and tests need not know which store they run on.
 */
import { StoreUnavailableError } from './event-log.js';

export type StoreWriteFailure = 'disk-full' | 'io-error' | 'read-only' | 'other';

/**
 * An append (or another write) could not be made durable. `disk-full` and `read-only` leave the
 * store consistent and clear once a write succeeds again; after `io-error` the outcome of the
 * failed commit is unknown, so the store refuses every later write until the service restarts.
 */
export class StoreWriteError extends StoreUnavailableError {
  override readonly name: string = 'StoreWriteError';
  readonly code: string;
  constructor(
    readonly failure: StoreWriteFailure,
    message: string,
    options?: { cause?: unknown; code?: string },
  ) {
    super(message, options);
    this.code = options?.code ?? 'STORE_WRITE_FAILED';
  }
}
