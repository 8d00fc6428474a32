/**
 * Size limits, timeouts and resource limits (README "Limits", API.md §2.1, §2.7), against real
 * xenopsd processes started with small limits by flag: each limit is hit, the client is told which
 * one, `/metrics` shows it, and the service goes on serving everybody else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, NATS_SERVER_BIN } from '../support/own-nats.js';
import { rawHttp } from '../support/raw-http.js';
import { httpRequest, X, type Endpoint, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import {
  cleanupAll,
  makeTempDir,
  NATS_URL,
  spawnXenopsd,
  uniquePrefix,
  uniqueSuffix,
  type Xenopsd,
} from '../support/xenopsd.js';
import { parseXmlRpcResponse } from '../support/xmlrpc.js';

afterAll(cleanupAll);

const LIMIT = 16 * 1024 * 1024;
type Updates = [unknown[], unknown[], number];

async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `xenops_limit*{resource}` samples of `/metrics`, by resource. */
async function limitMetrics(ep: Endpoint): Promise<Record<string, { limit: number; inUse: number; refusals: number }>> {
  const r = await httpRequest(ep, { method: 'GET', path: '/metrics' });
  expect(r.status).toBe(200);
  const out: Record<string, { limit: number; inUse: number; refusals: number }> = {};
  for (const m of r.body.matchAll(/^(xenops_limit|xenops_limit_in_use|xenops_limit_refusals_total)\{resource="([a-z_]+)"\} (\d+)$/gm)) {
    const entry = (out[m[2]!] ??= { limit: NaN, inUse: NaN, refusals: NaN });
    const key = m[1] === 'xenops_limit' ? 'limit' : m[1] === 'xenops_limit_in_use' ? 'inUse' : 'refusals';
    entry[key] = Number(m[3]);
  }
  return out;
}

const lastId = (c: RpcClient) => c.ok<number>('UPDATES.last_id', X());

/** A body of exactly `size` bytes: the request, then spaces. */
function padded(request: string, size: number): Buffer {
  const b = Buffer.alloc(size, ' ');
  b.write(request, 0);
  return b;
}

function chunked(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]);
}

const JSON_QUERY = '{"method":"query","params":[{}],"id":1}';
const XML_QUERY = '<?xml version="1.0"?><methodCall><methodName>query</methodName><params><param><value><struct></struct></value></param></params></methodCall>';

describe('embedded, with small limits set by flag', () => {
  let x: Xenopsd;
  let c: RpcClient;
  let unixUrl: string;

  beforeAll(async () => {
    x = await spawnXenopsd({
      mode: 'embedded',
      extraArgs: [
        '--max-updates-waiters', '2',
        '--max-sse-clients', '1',
        '--max-queued-tasks', '2',
        '--headers-timeout', '1',
        '--request-timeout', '2',
        '--keep-alive-timeout', '1',
      ],
    });
    c = x.client();
    unixUrl = `unix:${x.socketPath!}`;
  });

  it('/metrics shows every limit with its configured value (defaults for the rest)', async () => {
    const m = await limitMetrics({ url: x.url! });
    expect(Object.keys(m).sort()).toEqual(['sse_clients', 'tcp_connections', 'unix_connections', 'updates_waiters', 'vm_queued_tasks']);
    expect(m.updates_waiters!.limit).toBe(2);
    expect(m.sse_clients!.limit).toBe(1);
    expect(m.vm_queued_tasks!.limit).toBe(2);
    expect(m.tcp_connections!.limit).toBe(1024);
    expect(m.tcp_connections!.inUse).toBeGreaterThanOrEqual(1); // this very request
  });

  it('UPDATES.get: a third blocked call is refused naming the limit, in every codec; the blocked ones are woken and room returns', async () => {
    const token = await lastId(c);
    const blocked = [0, 1].map(() => c.ok<Updates>('UPDATES.get', X({ last_id: token, timeout: 30 })));
    await until(async () => (await limitMetrics({ url: x.url! })).updates_waiters!.inUse === 2, 'two blocked UPDATES.get calls');
    for (const codec of ['json1', 'json2', 'xml'] as const) {
      const out = await c.withCodec(codec).call('UPDATES.get', [X({ last_id: token, timeout: 30 })]);
      expect(out.ok).toBe(false);
      if (!out.ok) expect(out.error).toEqual(['Internal_error', 'too many blocked UPDATES.get calls (limit 2)']);
      if (!out.ok && codec === 'json2') expect((out.envelope as { error: { code: number } }).error.code).toBe(-32000);
    }
    // A call that does not block is answered; so is everything else.
    expect(await c.ok<Updates>('UPDATES.get', X({ last_id: token, timeout: 0 }))).toEqual([[], [], token]);
    expect(await c.ok('query', X())).toMatchObject({ name: 'xenops' });
    const m = await limitMetrics({ url: x.url! });
    expect(m.updates_waiters).toMatchObject({ limit: 2, inUse: 2, refusals: 3 });

    const id = vmId('wake');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    for (const [, , next] of await Promise.all(blocked)) expect(next).toBeGreaterThan(token);
    await until(async () => (await limitMetrics({ url: x.url! })).updates_waiters!.inUse === 0, 'the waiters released');
    const head = await lastId(c);
    const again = c.ok<Updates>('UPDATES.get', X({ last_id: head, timeout: 30 }));
    await until(async () => (await limitMetrics({ url: x.url! })).updates_waiters!.inUse === 1, 'a new blocked call');
    await c.ok('UPDATES.refresh_vm', X({ id }));
    expect((await again)[1]).toEqual([['Vm', id]]);
  });

  it('GET /events: a second stream gets 503 with the reason and Retry-After; once the first ends, a new one is served', async () => {
    const u = new URL(x.url!);
    const first = await new Promise<{ res: http.IncomingMessage; req: http.ClientRequest }>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: Number(u.port), path: '/events', agent: false }, (res) => resolve({ res, req }));
      req.on('error', reject);
      req.end();
    });
    expect(first.res.statusCode).toBe(200);
    first.res.on('error', () => {});
    const second = await httpRequest({ url: x.url! }, { method: 'GET', path: '/events' });
    expect(second.status).toBe(503);
    expect(second.headers['retry-after']).toBe('5');
    expect(second.body).toBe('too many GET /events clients (limit 1)');
    // The Unix socket shares the limit: it is the same stream service.
    expect((await httpRequest({ socketPath: x.socketPath! }, { method: 'GET', path: '/events' })).status).toBe(503);
    expect((await limitMetrics({ url: x.url! })).sse_clients).toMatchObject({ limit: 1, inUse: 1, refusals: 2 });
    first.req.destroy();
    await until(async () => (await limitMetrics({ url: x.url! })).sse_clients!.inUse === 0, 'the first stream gone');
    const third = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: Number(u.port), path: '/events', agent: false }, (res) => {
        resolve(res.statusCode!);
        req.destroy();
      });
      req.on('error', () => {});
      req.setTimeout(5000, () => reject(new Error('no answer')));
      req.end();
    });
    expect(third).toBe(200);
  });

  it('queued tasks: past 2 waiting on one VM the call fails naming VM and limit, nothing is appended; other VMs and later calls are served', async () => {
    const id = vmId('queue');
    const other = vmId('queue-other');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    await c.ok('VM.add', X({ vm: xenopsdVm(other) }));
    const running = await c.ok<string>('VM.delay', X({ id, delay: 60 }));
    await until(async () => (await c.ok<{ state: [string, number] }>('Task.stat', X({ id: running }))).state[0] === 'Pending', 'the delay task');
    const queued = [await c.ok<string>('VM.delay', X({ id, delay: 0 })), await c.ok<string>('VM.delay', X({ id, delay: 0 }))];
    await until(async () => (await limitMetrics({ url: x.url! })).vm_queued_tasks!.inUse === 2, 'two queued tasks');
    const head = await lastId(c);
    const tasksBefore = (await c.ok<unknown[]>('Task.list', X())).length;
    for (const codec of ['json1', 'xml'] as const) {
      const out = await c.withCodec(codec).call('VM.delay', [X({ id, delay: 0 })]);
      expect(out.ok).toBe(false);
      if (!out.ok) expect(out.error).toEqual(['Internal_error', `too many queued tasks for VM ${id} (limit 2)`]);
    }
    // S/q calls go through the same queue.
    expect(await c.fail('VM.remove', X({ id }))).toEqual(['Internal_error', `too many queued tasks for VM ${id} (limit 2)`]);
    expect(await lastId(c)).toBe(head);
    expect((await c.ok<unknown[]>('Task.list', X())).length).toBe(tasksBefore);
    expect(await c.ok<string>('VM.delay', X({ id: other, delay: 0 }))).toMatch(/^\d+$/);
    expect((await limitMetrics({ url: x.url! })).vm_queued_tasks).toMatchObject({ limit: 2, refusals: 3 });
    await c.ok('Task.cancel', X({ id: running }));
    for (const t of queued) await until(async () => (await c.ok<{ state: [string] }>('Task.stat', X({ id: t }))).state[0] !== 'Pending', `task ${t}`);
    expect(await c.ok<string>('VM.delay', X({ id, delay: 0 }))).toMatch(/^\d+$/);
  });

  describe.each(['tcp', 'unix'] as const)('HTTP limits over %s', (transport) => {
    const target = () => (transport === 'tcp' ? x.url! : unixUrl);
    const host = 'Host: xenopsd';

    it('a head over 16 KiB → 431, empty body, connection closed; a 15 KiB head is served', async () => {
      const big = await rawHttp(target(), `POST / HTTP/1.1\r\n${host}\r\nX-Pad: ${'a'.repeat(16 * 1024)}\r\nContent-Length: ${JSON_QUERY.length}`, JSON_QUERY);
      expect(big.status).toBe(431);
      expect(big.body).toBe('');
      expect(big.closed).toBe(true);
      const fits = await rawHttp(target(), `POST / HTTP/1.1\r\n${host}\r\nX-Pad: ${'a'.repeat(15 * 1024)}\r\nContent-Length: ${JSON_QUERY.length}\r\nConnection: close`, JSON_QUERY);
      expect(fits.status).toBe(200);
      expect(JSON.parse(fits.body)).toMatchObject({ result: { name: 'xenops' } });
    });

    it('--headers-timeout 1: a head that never ends → 408 after about a second', async () => {
      const t0 = Date.now();
      const r = await slowSend(target(), ['POST / HTTP/1.1\r\n', ...Array.from({ length: 30 }, (_, i) => `X-Slow-${i}: y\r\n`)], 150);
      expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(Date.now() - t0).toBeLessThan(3500);
    });

    it('--request-timeout 2: a body that trickles in → 408 after about two seconds', async () => {
      const t0 = Date.now();
      const r = await slowSend(target(), [`POST / HTTP/1.1\r\n${host}\r\nContent-Length: 100\r\n\r\n{`, ...Array.from({ length: 30 }, () => ' ')], 150);
      expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      expect(Date.now() - t0).toBeLessThan(4500);
    });

    it('a JSON body of 16 MiB + 1 → 413 (Content-Length and chunked); exactly 16 MiB is served', async () => {
      const over = padded(JSON_QUERY, LIMIT + 1);
      for (const [head, body] of [
        [`POST / HTTP/1.1\r\n${host}\r\nContent-Type: application/json\r\nContent-Length: ${over.length}`, over],
        [`POST / HTTP/1.1\r\n${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked`, chunked(over)],
      ] as const) {
        const r = await rawHttp(target(), head, body);
        expect(r.status).toBe(413);
        expect(r.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(r.body)).toEqual({ result: null, error: ['Internal_error', 'request body exceeds 16777216 bytes'], id: null });
        expect(r.closed).toBe(true);
      }
      const exact = padded(JSON_QUERY, LIMIT);
      const ok = await rawHttp(target(), `POST / HTTP/1.1\r\n${host}\r\nTransfer-Encoding: chunked\r\nConnection: close`, chunked(exact));
      expect(ok.status).toBe(200);
    });

    it('an XML body of 16 MiB + 1 → 413 with an XML-RPC Failure (Content-Length and chunked)', async () => {
      const over = padded(XML_QUERY, LIMIT + 1);
      for (const [head, body] of [
        [`POST / HTTP/1.1\r\n${host}\r\nContent-Type: text/xml\r\nContent-Length: ${over.length}`, over],
        [`POST / HTTP/1.1\r\n${host}\r\nTransfer-Encoding: chunked`, chunked(over)],
      ] as const) {
        const r = await rawHttp(target(), head, body);
        expect(r.status).toBe(413);
        expect(r.headers['content-type']).toMatch(/^text\/xml/);
        expect(parseXmlRpcResponse(r.body)).toEqual({ kind: 'params', value: { Status: 'Failure', ErrorDescription: ['Internal_error', 'request body exceeds 16777216 bytes'] } });
      }
      expect(await (transport === 'tcp' ? c : x.socketClient()).withCodec('xml').ok('query', X())).toMatchObject({ name: 'xenops' });
    });
  });

  it('--request-timeout 2 never cuts off a blocking UPDATES.get or an SSE stream: only receiving the request is timed', async () => {
    const token = await lastId(c);
    const t0 = Date.now();
    expect(await c.ok<Updates>('UPDATES.get', X({ last_id: token, timeout: 4 }))).toEqual([[], [], token]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3900);
    // A stream outlives the request deadline and still carries records.
    const u = new URL(x.url!);
    const id = vmId('sse-late');
    const record = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: Number(u.port), path: `/events?vm=${id}`, agent: false }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes('event: vm')) {
            resolve(text);
            req.destroy();
          }
        });
        setTimeout(() => void c.ok('VM.add', X({ vm: xenopsdVm(id) })).catch(reject), 3000);
      });
      req.on('error', () => {});
      req.setTimeout(15_000, () => reject(new Error('no record')));
      req.end();
    });
    expect(record).toContain(`"id":["Vm","${id}"]`);
  });
});

/** Writes `parts` on a fresh connection, one every `everyMs`, and reads until the server closes. */
function slowSend(url: string, parts: readonly string[], everyMs: number): Promise<{ text: string }> {
  const target: net.NetConnectOpts = url.startsWith('unix:') ? { path: url.slice(5) } : { host: new URL(url).hostname, port: Number(new URL(url).port) };
  return new Promise((resolve) => {
    const s = net.connect(target);
    let text = '';
    const timer = setTimeout(() => s.destroy(), 15_000);
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text });
    });
    s.on('connect', async () => {
      for (const p of parts) {
        if (s.destroyed || !s.writable) return;
        s.write(p);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    });
  });
}

describe('--max-connections 3', () => {
  let y: Xenopsd;
  beforeAll(async () => {
    y = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--max-connections', '3'] });
  });

  it('a fourth TCP connection gets 503 "too many connections (limit 3)" with Retry-After; the Unix socket still serves; closing one makes room', async () => {
    const u = new URL(y.url!);
    const holders = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(s));
            s.on('error', reject);
          }),
      ),
    );
    try {
      await until(async () => (await limitMetrics({ socketPath: y.socketPath! })).tcp_connections!.inUse === 3, 'three open TCP connections');
      const refused = await httpRequest({ url: y.url! }, { body: JSON_QUERY });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.body).toBe('too many connections (limit 3)');
      expect(await y.socketClient().ok('query', X())).toMatchObject({ name: 'xenops' });
      const m = await limitMetrics({ socketPath: y.socketPath! });
      expect(m.tcp_connections).toMatchObject({ limit: 3, inUse: 3, refusals: 1 });
      expect(m.unix_connections!.limit).toBe(3);
    } finally {
      holders.forEach((s) => s.destroy());
    }
    await until(async () => (await limitMetrics({ socketPath: y.socketPath! })).tcp_connections!.inUse === 0, 'the connections released');
    expect(await y.client().ok('query', X())).toMatchObject({ name: 'xenops' });
  });
});

describe('NATS, gateway and agent as two processes, small limits', () => {
  const prefix = uniquePrefix('lim');
  const hostId = `h-${uniqueSuffix()}`;
  const queue = `xenops-limits.${uniqueSuffix()}`;
  let gateway: Xenopsd;
  let nc: NatsConnection;

  beforeAll(async () => {
    const limits = ['--max-nats-requests', '2', '--max-queued-tasks', '2'];
    await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId, extraArgs: ['--socket', 'off', ...limits] });
    gateway = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId, extraArgs: ['--queue', queue, ...limits] });
    nc = await connect({ servers: NATS_URL });
  });
  afterAll(() => nc?.close());

  const natsCall = async (body: string, timeoutMs = 10_000) => new TextDecoder().decode((await nc.request(queue, body, { timeout: timeoutMs })).data);

  it('a third request on the RPC subject while two are in flight is answered at once with the limit, in the body\u2019s format', async () => {
    const c = gateway.client();
    const token = await lastId(c);
    const blocked = [1, 2].map((i) =>
      natsCall(JSON.stringify({ method: 'UPDATES.get', id: i, params: [{ debug_info: 'n', last_id: token, timeout: 30 }] }), 35_000),
    );
    await until(async () => (await limitMetrics({ url: gateway.url! })).nats_requests!.inUse === 2, 'two NATS requests in flight');
    expect(JSON.parse(await natsCall(JSON_QUERY))).toEqual({ result: null, error: ['Internal_error', 'too many concurrent NATS requests (limit 2)'], id: null });
    expect(parseXmlRpcResponse(await natsCall(XML_QUERY))).toEqual({
      kind: 'params',
      value: { Status: 'Failure', ErrorDescription: ['Internal_error', 'too many concurrent NATS requests (limit 2)'] },
    });
    // HTTP is not held up by the NATS limit.
    expect(await c.ok('query', X())).toMatchObject({ name: 'xenops' });
    expect((await limitMetrics({ url: gateway.url! })).nats_requests).toMatchObject({ limit: 2, inUse: 2, refusals: 2 });
    const id = vmId('nats-wake');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    for (const reply of await Promise.all(blocked)) expect((JSON.parse(reply) as { result: Updates }).result[2]).toBeGreaterThan(token);
    await until(async () => (await limitMetrics({ url: gateway.url! })).nats_requests!.inUse === 0, 'the NATS requests answered');
    expect(JSON.parse(await natsCall(JSON_QUERY))).toMatchObject({ result: { name: 'xenops' }, error: null });
  });

  it('the agent process enforces --max-queued-tasks; the gateway reports the refusal', async () => {
    const c = gateway.client();
    const id = vmId('nats-queue');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    const running = await c.ok<string>('VM.delay', X({ id, delay: 60 }));
    await c.ok('VM.delay', X({ id, delay: 0 }));
    await c.ok('VM.delay', X({ id, delay: 0 }));
    expect(await c.fail('VM.delay', X({ id, delay: 0 }))).toEqual(['Internal_error', `too many queued tasks for VM ${id} (limit 2)`]);
    expect((await limitMetrics({ url: gateway.url! })).vm_queued_tasks).toMatchObject({ limit: 2, inUse: 2, refusals: 1 });
    await c.ok('Task.cancel', X({ id: running }));
  });
});

describe('NATS body limit (nats-server with max_payload 32 MiB)', () => {
  let server: ChildProcess;
  let x: Xenopsd;
  let nc: NatsConnection;
  const queue = `xenops-body.${uniqueSuffix()}`;

  beforeAll(async () => {
    const dir = await makeTempDir('xnatsbig');
    const port = await freePort();
    const conf = path.join(dir, 'nats.conf');
    await writeFile(conf, `listen: "127.0.0.1:${port}"\nmax_payload: 33554432\njetstream { store_dir: "${path.join(dir, 'js')}" }\n`);
    server = spawn(NATS_SERVER_BIN, ['-c', conf], { stdio: 'ignore' });
    const proc = server;
    process.once('exit', () => proc.kill('SIGKILL'));
    await until(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port }, () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        }),
      'nats-server listening',
    );
    const url = `nats://127.0.0.1:${port}`;
    // mode 'embedded' only means spawnXenopsd adds no --nats of its own: ours is in extraArgs.
    x = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--nats', url, '--nats-prefix', uniquePrefix('big'), '--queue', queue] });
    nc = await connect({ servers: url });
  });
  afterAll(async () => {
    await nc?.close();
    await x?.stop();
    server?.kill('SIGKILL');
  });

  const natsCall = async (body: Buffer) => new TextDecoder().decode((await nc.request(queue, body, { timeout: 20_000 })).data);

  it.each(['json', 'xml'] as Array<'json' | 'xml'>)('%s: 16 MiB + 1 → Failure "request body exceeds 16777216 bytes"; exactly 16 MiB is served', async (format) => {
    const request = format === 'json' ? JSON_QUERY : XML_QUERY;
    const over = await natsCall(padded(request, LIMIT + 1));
    const error = ['Internal_error', 'request body exceeds 16777216 bytes'];
    if (format === 'json') expect(JSON.parse(over)).toEqual({ result: null, error, id: null });
    else expect(parseXmlRpcResponse(over)).toEqual({ kind: 'params', value: { Status: 'Failure', ErrorDescription: error } });
    const exact = await natsCall(padded(request, LIMIT));
    if (format === 'json') expect(JSON.parse(exact)).toMatchObject({ result: { name: 'xenops' }, error: null });
    else expect(parseXmlRpcResponse(exact)).toMatchObject({ kind: 'params', value: { Status: 'Success' } });
  });
});
