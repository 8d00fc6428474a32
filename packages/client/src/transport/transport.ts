/** A way to carry one JSON-RPC request body to the service and bring back the reply body. */
export interface Transport {
  /** Where the service is, for messages: `http://127.0.0.1:8440`, `unix:/path`, `nats://… (subject …)`. */
  readonly describe: string;
  /**
   * Sends `body` and resolves with the reply text; `timeoutMs` bounds the whole exchange. Fails
   * with XenopsConnectionError, XenopsAuthError or XenopsProtocolError.
   */
  send(body: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}
