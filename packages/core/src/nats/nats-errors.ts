/** Why a NATS connection could not be made, as typed errors a caller can tell apart (exit codes). */
import { StoreUnavailableError } from '../store/event-log.js';

/**
 * NATS and this client could not establish who is who: the server refused the credentials
 * (`Authorization Violation`, expired credentials), the credentials could not be read, or TLS
 * failed (an unverifiable server certificate, a client certificate the server refused).
 */
export class NatsAuthenticationError extends StoreUnavailableError {
  override readonly name = 'NatsAuthenticationError';
  readonly code = 'NATS_AUTHENTICATION';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** No NATS server could be reached at all (refused, timed out, unknown host). */
export class NatsUnreachableError extends StoreUnavailableError {
  override readonly name = 'NatsUnreachableError';
  readonly code = 'NATS_UNREACHABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
