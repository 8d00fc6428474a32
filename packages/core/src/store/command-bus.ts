import type { Subscription } from './event-log.js';

/**
 * Request/reply between gateways and host agents. An address is a host id; exactly one server
 * handles each request (NATS: a queue group on the address's subject).
 */
export interface CommandBus {
  serve(address: string, handler: (request: Uint8Array) => Promise<Uint8Array>): Promise<Subscription>;
  /**
   * Throws NoResponderError when nothing serves `address`, BusTimeoutError after `timeoutMs`.
   * `headers` travel with the request where the transport has headers (NATS), for tools that read
   * them (e.g. `traceparent`); the handler gets the data only.
   */
  request(address: string, data: Uint8Array, options?: BusRequestOptions): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface BusRequestOptions {
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export class NoResponderError extends Error {
  override readonly name = 'NoResponderError';
  constructor(readonly address: string) {
    super(`no agent serves ${address}`);
  }
}

export class BusTimeoutError extends Error {
  override readonly name = 'BusTimeoutError';
  constructor(
    readonly address: string,
    readonly timeoutMs: number,
  ) {
    super(`request to ${address} timed out after ${timeoutMs} ms`);
  }
}

/** The request does not fit in one message of the bus (NATS: the server's `max_payload`). */
export class BusPayloadTooLargeError extends Error {
  override readonly name = 'BusPayloadTooLargeError';
  constructor(
    readonly address: string,
    readonly size: number,
    readonly maxPayload: number,
  ) {
    super(`a request of ${size} bytes to ${address} exceeds the bus's limit of ${maxPayload} bytes`);
  }
}

/** The server's handler threw: the requester gets the handler's message. */
export class BusRemoteError extends Error {
  override readonly name = 'BusRemoteError';
  constructor(
    readonly address: string,
    readonly remoteMessage: string,
  ) {
    super(`handler for ${address} failed: ${remoteMessage}`);
  }
}

/**
 * The address every agent serves besides its host's: a command any agent may decide (one for a
 * free VM) goes there when the host it was meant for has no agent. No host id is empty, so no
 * host's address is this one.
 */
export const ANY_AGENT = '';

/** Default request timeout of both bus implementations. */
export const DEFAULT_BUS_TIMEOUT_MS = 10_000;
