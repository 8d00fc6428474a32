/**
 * The head size limit, the request timeouts and the connection limit of the HTTP front end
 * (README "Limits"), with small values so that each deadline passes in about a second.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type NetConnectOpts } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dispatcher } from '../rpc/handler.js';
import { startHttpServer, type HttpService } from './server.js';

/** `sleep` answers after `ms` milliseconds: a reply slower than the request deadline. */
const dispatch: Dispatcher = async (req) => {
  const args = req.params.form === 'named' ? (req.params.args as Record<string, unknown>) : {};
  if (req.method === 'sleep') await new Promise((r) => setTimeout(r, Number(args['ms'])));
  return { ok: true, value: req.method };
};

const HEADERS_TIMEOUT_MS = 800;
const REQUEST_TIMEOUT_MS = 1500;
const KEEP_ALIVE_TIMEOUT_MS = 1000;

interface Exchange {
  /** Everything the server sent, as text. */
  readonly text: string;
  /** Milliseconds from connect to the server's close. */
  readonly ms: number;
  /** A reset or write error seen by the client. */
  readonly error?: string;
}

type Step = string | number;

/**
 * Opens a connection, plays `steps` (a string is written, a number waits that many ms) and reads
 * until the server closes (or `giveUpMs`, then the client closes).
 */
function exchange(target: NetConnectOpts, steps: readonly Step[], giveUpMs = 8000): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = connect(target);
    const chunks: Buffer[] = [];
    let error: string | undefined;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    const giveUp = setTimeout(() => s.destroy(), giveUpMs);
    s.on('close', () => {
      clearTimeout(giveUp);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started, ...(error ? { error } : {}) });
    });
    s.on('connect', async () => {
      for (const step of steps) {
        if (s.destroyed || !s.writable) return;
        if (typeof step === 'number') await new Promise((r) => setTimeout(r, step));
        else s.write(step);
      }
    });
  });
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? NaN);
const bodyOf = (text: string) => text.slice(text.indexOf('\r\n\r\n') + 4);
const rpcBody = (method: string, args: Record<string, unknown> = {}) => JSON.stringify({ method, params: [args], id: 1 });
const post = (body: string, extra = '') => `POST / HTTP/1.1\r\nHost: x\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

let dir: string;
let svc: HttpService;
let tcp: NetConnectOpts;
let unix: NetConnectOpts;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenops-limits-'));
  svc = await startHttpServer({
    listen: { host: '127.0.0.1', port: 0 },
    socketPath: join(dir, 'limits.sock'),
    dispatch,
    headersTimeoutMs: HEADERS_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  });
  tcp = { host: '127.0.0.1', port: svc.tcpAddress!.port };
  unix = { path: svc.socketPath! };
});
afterAll(async () => {
  await svc.close(100);
  rmSync(dir, { recursive: true, force: true });
});

// Each test waits on its own connection's deadline: they run side by side.
describe.concurrent.each(['tcp', 'unix'] as const)('over %s', (transport) => {
  const target = () => (transport === 'tcp' ? tcp : unix);

  it('a head of 15 KiB is served; one over 16 KiB gets 431 with an empty body and the connection closed', async () => {
    const fits = await exchange(target(), [post(rpcBody('query'), `X-Pad: ${'a'.repeat(15 * 1024)}\r\nConnection: close\r\n`)]);
    expect(statusOf(fits.text)).toBe(200);
    const big = await exchange(target(), [post(rpcBody('query'), `X-Pad: ${'a'.repeat(16 * 1024)}\r\n`)]);
    expect(statusOf(big.text)).toBe(431);
    expect(big.text).toMatch(/\r\nContent-Length: 0\r\n/);
    expect(bodyOf(big.text)).toBe('');
    expect(big.text).toMatch(/\r\nConnection: close\r\n/);
  });

  it('a 200 KiB head sent in many writes is answered 431 and read by the client without a reset', async () => {
    const steps: Step[] = ['POST / HTTP/1.1\r\nHost: x\r\n'];
    for (let i = 0; i < 20; i++) steps.push(`X-Pad-${i}: ${'b'.repeat(10 * 1024)}\r\n`, 5);
    steps.push('\r\n');
    const r = await exchange(target(), steps);
    expect(statusOf(r.text)).toBe(431);
    expect(r.error).toBeUndefined();
  });

  it('a head that trickles in (slowloris) is cut off with 408 once the head deadline passes', async () => {
    const steps: Step[] = ['POST / HTTP/1.1\r\n'];
    for (let i = 0; i < 40; i++) steps.push(200, `X-Slow-${i}: y\r\n`);
    const r = await exchange(target(), steps);
    expect(statusOf(r.text)).toBe(408);
    expect(bodyOf(r.text)).toBe('');
    expect(r.ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(r.ms).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
  });

  it('a connection that never sends anything is closed with 408 at the head deadline', async () => {
    const r = await exchange(target(), []);
    expect(statusOf(r.text)).toBe(408);
    expect(r.ms).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
  });

  it('a body that trickles in is cut off with 408 once the request deadline passes', async () => {
    const steps: Step[] = ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"method":'];
    for (let i = 0; i < 40; i++) steps.push(200, ' ');
    const r = await exchange(target(), steps);
    expect(statusOf(r.text)).toBe(408);
    expect(r.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(r.ms).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);
  });

  it('a reply slower than the request deadline is still sent: the deadline covers receiving the request only', async () => {
    const r = await exchange(target(), [post(rpcBody('sleep', { ms: REQUEST_TIMEOUT_MS + 1000 }), 'Connection: close\r\n')]);
    expect(statusOf(r.text)).toBe(200);
    expect(JSON.parse(bodyOf(r.text))).toEqual({ result: 'sleep', error: null, id: 1 });
    expect(r.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS + 1000);
  });

  it('keep-alive: a connection idle past the head and request deadlines but within keep-alive works; then it is closed', async () => {
    // Keep-alive idle time is governed by keepAliveTimeout alone: no head deadline runs between requests.
    const r = await exchange(target(), [post(rpcBody('first')), KEEP_ALIVE_TIMEOUT_MS - 200, post(rpcBody('second'))]);
    expect(r.text.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    expect(r.text).toContain('"result":"second"');
    // Closed by the server after the second reply, about keepAliveTimeout later (Node adds up to 1 s).
    expect(r.ms).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS * 2 + 3000);
  });
});

describe('connection limit', () => {
  let limited: HttpService;
  beforeAll(async () => {
    limited = await startHttpServer({ listen: { host: '127.0.0.1', port: 0 }, socketPath: join(dir, 'limited.sock'), dispatch, maxConnections: 3 });
  });
  afterAll(() => limited.close(100));

  const tcpInUse = () => limited.connectionUsage().find((u) => u.resource === 'tcp_connections')!;
  async function until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('past maxConnections a listener answers 503 with the limit and Retry-After; the other listener and later clients are served', async () => {
    const tcp = { host: '127.0.0.1', port: limited.tcpAddress!.port };
    const unix = { path: limited.socketPath! };
    // Three keep-alive connections, each idle after its reply: the listener is full.
    const holders = [0, 1, 2].map(() => exchange(tcp, [post(rpcBody('hold'))], 2000));
    await until(() => tcpInUse().inUse === 3, 'three open connections');
    const refused = await exchange(tcp, [post(rpcBody('query'))]);
    expect(statusOf(refused.text)).toBe(503);
    expect(refused.text).toMatch(/\r\nRetry-After: 1\r\n/);
    expect(refused.text).toMatch(/\r\nConnection: close\r\n/);
    expect(bodyOf(refused.text)).toBe('too many connections (limit 3)');
    expect(refused.error).toBeUndefined();
    // The Unix socket counts its own connections.
    expect(statusOf((await exchange(unix, [post(rpcBody('query'), 'Connection: close\r\n')])).text)).toBe(200);
    expect(tcpInUse()).toMatchObject({ limit: 3, inUse: 3, refusals: 1 });
    expect(limited.connectionUsage().find((u) => u.resource === 'unix_connections')).toMatchObject({ limit: 3, refusals: 0 });
    await Promise.all(holders);
    await until(() => tcpInUse().inUse === 0, 'the connections released');
    expect(statusOf((await exchange(tcp, [post(rpcBody('query'), 'Connection: close\r\n')])).text)).toBe(200);
  });
});
