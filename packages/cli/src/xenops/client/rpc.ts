/**
 * The CLI's calls, through the typed client (@xenops/client) on the chosen transport: the xenopsd
 * dialect over JSON-RPC v1 with named arguments plus `debug_info` (API.md §1, §2.4). Commands pass
 * arguments in their wire form (they come from xl configurations and command lines).
 */
import { XenopsCallError, XenopsClient, XenopsProtocolError } from '@xenops/client';
import { CliError, ExitCode } from '../errors.js';
import type { CliTransport } from './cli-transport.js';

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
  readonly client: XenopsClient;

  constructor(readonly transport: CliTransport) {
    this.client = new XenopsClient(transport, { debugInfo: DEBUG_INFO, timeoutMs: DEFAULT_TIMEOUT_MS });
  }

  /** Calls `method` with named arguments; resolves with `result`, throws `RpcFailure` on `error`. */
  async call<T = unknown>(method: string, args: Record<string, unknown> = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    try {
      return (await this.client.callWire(method, args, { timeoutMs })) as T;
    } catch (e) {
      throw cliFailure(e);
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** The client's failures in the CLI's terms (a transport's are already CliErrors). */
export function cliFailure(e: unknown): unknown {
  if (e instanceof XenopsCallError) return new RpcFailure(e.method, e.wire);
  if (e instanceof XenopsProtocolError) return new CliError(`${e.message}${e.received === undefined ? '' : `: ${e.received}`}`, ExitCode.GENERIC);
  return e;
}
