/**
 * What a call can fail with besides the service's own answer. The service's failures are core's
 * `XenopsError`, whose `value` is the error variant of API.md §6 (`tag` its constructor).
 */

/** Why the service could not be reached. */
export type ConnectionProblem =
  /** Nobody listens at the address (TCP) . */
  | 'refused'
  /** The Unix socket does not exist. */
  | 'no-socket'
  /** The Unix socket is not ours to use (mode 0600). */
  | 'permission'
  /** No answer in time. */
  | 'timeout'
  /** The host name does not resolve. */
  | 'unknown-host'
  /** The NATS server cannot be reached. */
  | 'nats-unreachable'
  /** No gateway answers on the NATS subject. */
  | 'no-responders'
  /** The connection broke (reset, cut during the reply, ...). */
  | 'other';

export class XenopsConnectionError extends Error {
  override readonly name = 'XenopsConnectionError';
  constructor(
    readonly problem: ConnectionProblem,
    /** Where the service was looked for: `http://…`, `unix:/path`, `nats://… (subject …)`. */
    readonly where: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The service refused the credentials: the HTTP token (401), or NATS's credentials or TLS. */
export class XenopsAuthError extends Error {
  override readonly name = 'XenopsAuthError';
  constructor(
    readonly where: string,
    /** Whether a token (or NATS credentials) was given at all. */
    readonly credentialsGiven: boolean,
    message: string,
  ) {
    super(message);
  }
}

/** The service answered something that is not a JSON-RPC reply (an HTTP error status, bad JSON). */
export class XenopsProtocolError extends Error {
  override readonly name = 'XenopsProtocolError';
  constructor(
    readonly where: string,
    message: string,
    /** The HTTP status, when the problem is one. */
    readonly status?: number,
    /** The start of what came back. */
    readonly received?: string,
  ) {
    super(message);
  }
}
