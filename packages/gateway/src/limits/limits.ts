/**
 * The gateway's resource limits and timeouts (README "Limits"): what one client, or many, may hold
 * at once before further requests are refused with a message naming the limit. Each bounded
 * resource reports its use in `/metrics` (`xenops_limit`, `xenops_limit_in_use`,
 * `xenops_limit_refusals_total`, by `resource`).
 */
import { DEFAULT_MAX_QUEUED_TASKS } from '@xenops/core';

export interface GatewayLimits {
  /** Open connections per listener: the TCP port and the Unix socket each. */
  readonly maxConnections: number;
  /** `UPDATES.get` calls blocked at once (HTTP and NATS together). */
  readonly maxUpdatesWaiters: number;
  /** `GET /events` streams at once. */
  readonly maxSseClients: number;
  /** Requests on the NATS RPC subject being handled at once (blocking `UPDATES.get` included). */
  readonly maxNatsRequests: number;
  /** Tasks waiting on one VM's queue: enforced by the host agents, reported here. */
  readonly maxQueuedTasks: number;
  /**
   * From the opening of a connection (for a later request on a keep-alive connection: from that
   * request's first byte) to the end of the head. Node checks both deadlines every 500 ms.
   */
  readonly headersTimeoutMs: number;
  /**
   * From the start of a request to the end of its body. Node 20 stops timing a request once its
   * body is complete, so a reply may take as long as it needs (a blocking UPDATES.get, an SSE stream).
   */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long; no other deadline runs between requests. */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: GatewayLimits = {
  // xapi keeps a few connections and UPDATES.get loops per client; these leave room for many
  // clients while bounding file descriptors and memory.
  maxConnections: 1024,
  maxUpdatesWaiters: 1024,
  // A stream may buffer up to 16 MiB for a slow reader before it is dropped: 64 bound that to 1 GiB.
  maxSseClients: 64,
  maxNatsRequests: 1024,
  maxQueuedTasks: DEFAULT_MAX_QUEUED_TASKS,
  // Local clients send a head in microseconds; 20 s only matters to a stalled or hostile one.
  headersTimeoutMs: 20_000,
  // A 16 MiB body (§2.1) in 120 s needs 140 KB/s: any real link, never a trickle.
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
};

/** The request head's maximum size in bytes (request line and headers): answered `431` beyond it. */
export const MAX_HEADER_BYTES = 16384;

/** One bounded resource as `/metrics` shows it. */
export interface LimitUsage {
  readonly resource: string;
  readonly limit: number;
  readonly inUse: number;
  /** Requests refused because the limit was reached, since the process started. */
  readonly refusals: number;
}
