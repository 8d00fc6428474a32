/**
 * The typed client of the xenopsd dialect (API.md §5.1, §5.2), built on core's method table:
 * `call('VM.start', { id, paused: false })` takes the arguments as the table declares them and
 * resolves with the decoded result, or fails with a `XenopsCallError` carrying the service's error
 * variant (§6). Requests are JSON-RPC v1 with named arguments and `debug_info` (§2.4, §2.5).
 */
import {
  encodeField,
  wireToJson,
  XenopsError,
  xenopsdMethods,
  type AnyMethodDeclaration,
  type CallArgsOf,
  type ErrorValue,
  type NatsSecurityOptions,
  type ResultOf,
  type XenopsdMethodName,
  type XenopsdMethods,
} from '@xenops/core';
import { XenopsProtocolError } from './errors.js';
import { HttpTransport } from './transport/http.js';
import { NatsTransport } from './transport/nats.js';
import type { Transport } from './transport/transport.js';
import { waitForTask, type TaskWaitOptions, type TaskOutcome } from './wait-for-task.js';

const DEFAULT_TIMEOUT_MS = 60_000;

/** The service answered a call with an error (§6): `value` is the variant, `wire` exactly what came. */
export class XenopsCallError extends XenopsError {
  constructor(
    readonly method: string,
    /** The error member of the reply as received (`value` is it as core's ErrorValue). */
    readonly wire: unknown,
  ) {
    super(errorValueOf(wire));
  }
}

function errorValueOf(wire: unknown): ErrorValue {
  if (typeof wire === 'string') return wire;
  if (Array.isArray(wire) && typeof wire[0] === 'string') return [wire[0], wire[1]];
  return ['Internal_error', JSON.stringify(wire)];
}

export interface ClientOptions {
  /** The `debug_info` of every call (what the service's audit and logs show); default `xenops-client`. */
  readonly debugInfo?: string;
  /** The default bound of one call (a blocking `UPDATES.get` needs more than its own timeout); default 60 s. */
  readonly timeoutMs?: number;
}

export interface CallOptions {
  readonly timeoutMs?: number;
  readonly debugInfo?: string;
}

/** The arguments of a method: may be left out when every one of them may (§2.5). */
type ArgsParam<N extends XenopsdMethodName> = {} extends CallArgsOf<XenopsdMethods[N]>
  ? [args?: CallArgsOf<XenopsdMethods[N]>, options?: CallOptions]
  : [args: CallArgsOf<XenopsdMethods[N]>, options?: CallOptions];

export class XenopsClient {
  private nextId = 1;
  private readonly debugInfo: string;
  private readonly timeoutMs: number;

  constructor(
    readonly transport: Transport,
    options: ClientOptions = {},
  ) {
    this.debugInfo = options.debugInfo ?? 'xenops-client';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The service over HTTP on TCP: `http://127.0.0.1:8440` by default (§2.1). */
  static http(url = 'http://127.0.0.1:8440', options: ClientOptions & { readonly token?: string } = {}): XenopsClient {
    return new XenopsClient(new HttpTransport({ url, ...(options.token ? { token: options.token } : {}) }), options);
  }

  /** The service over HTTP on its Unix socket (`<data-dir>/xenopsd.sock`, §2.1). */
  static socket(path: string, options: ClientOptions = {}): XenopsClient {
    return new XenopsClient(new HttpTransport({ socketPath: path }), options);
  }

  /** The gateways of a NATS-mode cluster (§2.7). */
  static nats(servers: string, options: ClientOptions & { readonly subject?: string; readonly security?: NatsSecurityOptions } = {}): XenopsClient {
    const { subject, security } = options;
    return new XenopsClient(new NatsTransport({ servers, ...(subject ? { subject } : {}), ...(security ? { security } : {}) }), options);
  }

  /** Calls a method of the xenopsd dialect with typed arguments; resolves with its decoded result. */
  async call<N extends XenopsdMethodName>(method: N, ...[args, options]: ArgsParam<N>): Promise<ResultOf<XenopsdMethods[N]>> {
    // One method's declaration, seen as any method's: its own arguments are checked by ArgsParam<N>.
    const declaration: AnyMethodDeclaration = xenopsdMethods[method];
    const given = (args ?? {}) as Record<string, unknown>;
    const encoded: string[] = [];
    for (const a of declaration.args) {
      const value = given[a.key];
      if (value === undefined) continue; // absent: None, unit, or the §2.5 default
      const wire = encodeField(a.type, value as never, 'xenopsd');
      if (wire !== undefined) encoded.push(`${JSON.stringify(a.key)}:${wireToJson(wire)}`);
    }
    const result = await this.exchange(method, encoded, options);
    try {
      return declaration.result.decode(result, 'result') as ResultOf<XenopsdMethods[N]>;
    } catch (e) {
      throw new XenopsProtocolError(this.transport.describe, `the reply to ${method} is not its declared result: ${(e as Error).message}`);
    }
  }

  /**
   * Calls any method with arguments already in their wire form (named), and resolves with the
   * result as it came: for tools that speak the wire (a translator of xl configurations, a proxy).
   */
  callWire(method: string, args: Readonly<Record<string, unknown>> = {}, options: CallOptions = {}): Promise<unknown> {
    return this.exchange(
      method,
      Object.entries(args).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`),
      options,
    );
  }

  /** Follows a task (`Task.stat`) until it ends; see `waitForTask`. */
  waitForTask(taskId: string, options: TaskWaitOptions = {}): Promise<TaskOutcome> {
    return waitForTask(this, taskId, options);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private async exchange(method: string, encodedArgs: readonly string[], options: CallOptions = {}): Promise<unknown> {
    const id = this.nextId++;
    const params = [`"debug_info":${JSON.stringify(options.debugInfo ?? this.debugInfo)}`, ...encodedArgs].join(',');
    const body = `{"method":${JSON.stringify(method)},"id":${id},"params":[{${params}}]}`;
    const text = await this.transport.send(body, options.timeoutMs ?? this.timeoutMs);
    let reply: { result?: unknown; error?: unknown };
    try {
      reply = JSON.parse(text) as typeof reply;
    } catch {
      throw new XenopsProtocolError(this.transport.describe, `the server at ${this.transport.describe} sent a reply that is not JSON`, undefined, text.slice(0, 120));
    }
    if (reply === null || typeof reply !== 'object' || !('error' in reply)) {
      throw new XenopsProtocolError(this.transport.describe, `the server at ${this.transport.describe} sent a malformed JSON-RPC reply`, undefined, text.slice(0, 120));
    }
    if (reply.error !== null && reply.error !== undefined) throw new XenopsCallError(method, reply.error);
    return reply.result;
  }
}
