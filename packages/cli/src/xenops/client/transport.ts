/** A way to carry one JSON-RPC request body to the service and bring back the reply body. */
export interface Transport {
  /** Where the service is, for messages: `http://127.0.0.1:8440`, `unix:/path`, `nats://…`. */
  readonly describe: string;
  /**
   * Sends `body` and resolves with the reply text. `timeoutMs` bounds the whole exchange.
   * Throws `CliError` (exit CONNECTION or AUTH) when the service cannot be reached.
   */
  send(body: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

/** What to tell a user whose service is not running. */
export const START_HINT = "is xenopsd running? Start it with 'npm start' in the xenops-ts checkout, or run 'xenopsd'";
