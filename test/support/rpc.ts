/**
 * RPC clients for the end-to-end tests: JSON-RPC v1 and v2 and XML-RPC, over HTTP on TCP or on a
 * Unix socket. Each request uses a fresh connection (no keep-alive), so a test that breaks a
 * connection never affects the next one.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { encodeXmlRpcCall, parseXmlRpcResponse } from './xmlrpc.js';

export interface Endpoint {
  /** `http://host:port` */
  url?: string;
  /** Unix socket path (used instead of `url` when set). */
  socketPath?: string;
  /** Bearer token sent on every request when set. */
  token?: string;
}

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpOptions {
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string | number>;
  /** Send the body with chunked encoding and no Content-Length. */
  chunked?: boolean;
  timeoutMs?: number;
}

export function httpRequest(ep: Endpoint, opts: HttpOptions = {}): Promise<HttpReply> {
  const { method = 'POST', path = '/', body, timeoutMs = 30_000 } = opts;
  const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
  if (ep.token && headers.Authorization === undefined) headers.Authorization = `Bearer ${ep.token}`;
  if (body !== undefined && !opts.chunked && headers['Content-Length'] === undefined) {
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  let target: http.RequestOptions;
  if (ep.socketPath) {
    target = { socketPath: ep.socketPath, path };
  } else {
    if (!ep.url) throw new Error('endpoint has neither url nor socketPath');
    const u = new URL(ep.url);
    target = { host: u.hostname, port: Number(u.port), path };
  }
  return new Promise<HttpReply>((resolve, reject) => {
    const req = http.request({ ...target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`HTTP ${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export type Codec = 'json1' | 'json2' | 'xml';

export type Outcome = { ok: true; value: unknown; envelope: unknown } | { ok: false; error: unknown; envelope: unknown };

export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly error: unknown,
    readonly envelope: unknown,
  ) {
    super(`${method} failed: ${JSON.stringify(error)}`);
  }
}

let nextId = 1;

export class RpcClient {
  constructor(
    readonly endpoint: Endpoint,
    readonly codec: Codec = 'json1',
  ) {}

  withCodec(codec: Codec): RpcClient {
    return new RpcClient(this.endpoint, codec);
  }

  /** Sends a raw body and returns the HTTP reply. */
  raw(body: string | Buffer, opts: Omit<HttpOptions, 'body'> = {}): Promise<HttpReply> {
    return httpRequest(this.endpoint, { ...opts, body });
  }

  /** Calls `method` with the given params array (positional or `[{named}]`). */
  async call(method: string, params: unknown[]): Promise<Outcome> {
    if (this.codec === 'xml') {
      const reply = await this.raw(encodeXmlRpcCall(method, params), { headers: { 'Content-Type': 'text/xml' } });
      if (reply.status !== 200) throw new Error(`${method}: HTTP ${reply.status}: ${reply.body}`);
      expectContentType(reply, 'text/xml', method);
      const parsed = parseXmlRpcResponse(reply.body);
      if (parsed.kind === 'fault') throw new Error(`${method}: unexpected XML-RPC fault ${parsed.faultCode} ${parsed.faultString}`);
      const v = parsed.value as { Status?: unknown; Value?: unknown; ErrorDescription?: unknown };
      if (v.Status === 'Success') return { ok: true, value: v.Value === undefined ? null : v.Value, envelope: v };
      if (v.Status === 'Failure') return { ok: false, error: v.ErrorDescription, envelope: v };
      throw new Error(`${method}: malformed XML-RPC envelope ${JSON.stringify(v)}`);
    }
    const id = nextId++;
    const req: Record<string, unknown> = { method, params, id };
    if (this.codec === 'json2') req.jsonrpc = '2.0';
    const reply = await this.raw(JSON.stringify(req), { headers: { 'Content-Type': 'application/json' } });
    if (reply.status !== 200) throw new Error(`${method}: HTTP ${reply.status}: ${reply.body}`);
    expectContentType(reply, 'application/json', method);
    const env = JSON.parse(reply.body) as Record<string, unknown>;
    if (env.id !== id) throw new Error(`${method}: reply id ${JSON.stringify(env.id)} does not echo request id ${id}`);
    if (this.codec === 'json2') {
      if (env.jsonrpc !== '2.0') throw new Error(`${method}: v2 reply lacks "jsonrpc":"2.0": ${reply.body}`);
      if ('error' in env) return { ok: false, error: (env.error as { data?: unknown }).data, envelope: env };
      return { ok: true, value: env.result, envelope: env };
    }
    if (!('result' in env) || !('error' in env)) throw new Error(`${method}: malformed v1 reply ${reply.body}`);
    if (env.error !== null) return { ok: false, error: env.error, envelope: env };
    return { ok: true, value: env.result, envelope: env };
  }

  /** Named-form call. */
  named(method: string, args: Record<string, unknown>): Promise<Outcome> {
    return this.call(method, [args]);
  }

  /** Named-form call that must succeed; returns its value. */
  async ok<T = unknown>(method: string, args: Record<string, unknown>): Promise<T> {
    const o = await this.named(method, args);
    if (!o.ok) throw new RpcError(method, o.error, o.envelope);
    return o.value as T;
  }

  /** Named-form call that must fail; returns its error value. */
  async fail(method: string, args: Record<string, unknown>): Promise<unknown> {
    const o = await this.named(method, args);
    if (o.ok) throw new Error(`${method} succeeded unexpectedly with ${JSON.stringify(o.value)}`);
    return o.error;
  }
}

function expectContentType(reply: HttpReply, want: string, method: string): void {
  const ct = String(reply.headers['content-type'] ?? '');
  if (!ct.startsWith(want)) throw new Error(`${method}: Content-Type ${JSON.stringify(ct)}, expected ${want}`);
}

/** Adds the xenopsd debug key. */
export const X = (args: Record<string, unknown> = {}, dbg = 'e2e'): Record<string, unknown> => ({ debug_info: dbg, ...args });
/** Adds the seed debug key. */
export const S = (args: Record<string, unknown> = {}, dbg = 'e2e'): Record<string, unknown> => ({ dbg, ...args });

export type Dialect = 'xenopsd' | 'seed';

export interface XenopsdTask {
  id: string;
  dbg: string;
  ctime: number;
  state: [string, unknown];
  subtasks: Record<string, unknown>;
  debug_info: Record<string, string>;
  backtrace: string;
  cancellable: boolean;
}
export interface SeedTask {
  id: string;
  result: [string, unknown];
  subtasks: Record<string, unknown>;
}

/** Polls `Task.stat` until the task is no longer Pending; returns the final task record. */
export async function waitTask(client: RpcClient, id: string, opts?: { dialect?: 'xenopsd'; timeoutMs?: number }): Promise<XenopsdTask>;
export async function waitTask(client: RpcClient, id: string, opts: { dialect: 'seed'; timeoutMs?: number }): Promise<SeedTask>;
export async function waitTask(
  client: RpcClient,
  id: string,
  opts: { dialect?: Dialect; timeoutMs?: number } = {},
): Promise<XenopsdTask | SeedTask> {
  const dialect = opts.dialect ?? 'xenopsd';
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let delay = 5;
  for (;;) {
    const t = await client.ok<XenopsdTask & SeedTask>('Task.stat', dialect === 'seed' ? S({ id }) : X({ id }));
    const state = dialect === 'seed' ? t.result : t.state;
    if (!Array.isArray(state)) throw new Error(`Task.stat ${id}: no state in ${JSON.stringify(t)}`);
    if (state[0] !== 'Pending') return t;
    if (Date.now() > deadline) throw new Error(`task ${id} still Pending after ${opts.timeoutMs ?? 20_000} ms: ${JSON.stringify(t)}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Waits until `VM.stat` shows the power state (xenopsd dialect). */
export async function waitPower(client: RpcClient, vm: string, power: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [, st] = await client.ok<[unknown, { power_state: string }]>('VM.stat', X({ id: vm }));
    if (st.power_state === power) return;
    if (Date.now() > deadline) throw new Error(`VM ${vm} is ${st.power_state}, expected ${power} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const numericIds = (tasks: readonly { id: string }[]): number[] => tasks.map((t) => Number(t.id));

/** Polls `probe` every 200 ms until it returns something other than undefined; fails after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
