/** The xenopsd dialect over JSON-RPC v1 (API.md §1, §2.4): named arguments plus `debug_info`. */
import { CliError, ExitCode } from '../errors.js';
import type { Transport } from './transport.js';

export const DEBUG_INFO = 'xenops-cli';
const DEFAULT_TIMEOUT_MS = 60_000;

/** The server answered with an error value (§6). */
export class RpcFailure extends Error {
  override readonly name = 'RpcFailure';
  constructor(
    readonly method: string,
    readonly error: unknown,
  ) {
    super(`${method} failed: ${JSON.stringify(error)}`);
  }
  get tag(): string {
    return typeof this.error === 'string' ? this.error : Array.isArray(this.error) ? String(this.error[0]) : 'Unknown_error';
  }
  get payload(): unknown {
    return Array.isArray(this.error) ? this.error[1] : undefined;
  }
}

export class RpcClient {
  private nextId = 1;
  constructor(readonly transport: Transport) {}

  /** Calls `method` with named arguments; resolves with `result`, throws `RpcFailure` on `error`. */
  async call<T = unknown>(method: string, args: Record<string, unknown> = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    const id = this.nextId++;
    const body = JSON.stringify({ method, id, params: [{ debug_info: DEBUG_INFO, ...args }] });
    const text = await this.transport.send(body, timeoutMs);
    let reply: { result?: unknown; error?: unknown; id?: unknown };
    try {
      reply = JSON.parse(text) as typeof reply;
    } catch {
      throw new CliError(`the server at ${this.transport.describe} sent a reply that is not JSON: ${text.slice(0, 120)}`, ExitCode.GENERIC);
    }
    if (reply === null || typeof reply !== 'object' || !('error' in reply)) {
      throw new CliError(`the server at ${this.transport.describe} sent a malformed JSON-RPC reply: ${text.slice(0, 120)}`, ExitCode.GENERIC);
    }
    if (reply.error !== null && reply.error !== undefined) throw new RpcFailure(method, reply.error);
    return reply.result as T;
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
