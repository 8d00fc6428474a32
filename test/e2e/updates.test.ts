/**
 * UPDATES (API.md §7.7, §9.2), the NATS RPC subject (§2.7) and `GET /metrics` (§2.8), against
 * real xenopsd processes (embedded, and NATS with separate gateway and agent processes).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { httpRequest, X, waitTask, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import {
  assertNatsReachable,
  cleanupAll,
  NATS_URL,
  respawn,
  spawnXenopsd,
  uniquePrefix,
  uniqueSuffix,
  XENOPSD_BIN,
  type Xenopsd,
} from '../support/xenopsd.js';

afterAll(cleanupAll);

type DynId = [string, unknown];
type Barrier = [number, DynId[]];
type Updates = [Barrier[], DynId[], number];

const get = (c: RpcClient, args: Record<string, unknown>) => c.ok<Updates>('UPDATES.get', X(args));
const lastId = (c: RpcClient) => c.ok<number>('UPDATES.last_id', X());

async function addVm(c: RpcClient, tag = 'upd'): Promise<string> {
  const id = vmId(tag);
  await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
  return id;
}

async function metricsText(x: Xenopsd): Promise<string> {
  const r = await httpRequest({ url: x.url! }, { method: 'GET', path: '/metrics' });
  expect(r.status).toBe(200);
  expect(String(r.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.body;
}

/** Parses the exposition format: `name{labels} value` lines (throws on a malformed one). */
function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in ${line}`);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('UPDATES, embedded', () => {
  let x: Xenopsd;
  let c: RpcClient;
  beforeAll(async () => {
    x = await spawnXenopsd({ mode: 'embedded' });
    c = x.client();
  });

  it('full resync without last_id; timeout 0 returns at once with nothing newer', async () => {
    const a = await addVm(c);
    const b = await addVm(c);
    const [barriers, ids, next] = await get(c, { timeout: 0 });
    expect(barriers).toEqual([]);
    expect(ids).toEqual(expect.arrayContaining([['Vm', a], ['Vm', b]]));
    expect(next).toBe(await lastId(c));
    const t0 = Date.now();
    expect(await get(c, { last_id: next, timeout: 0 })).toEqual([[], [], next]);
    expect(await get(c, { last_id: next, timeout: -5 })).toEqual([[], [], next]);
    expect(Date.now() - t0).toBeLessThan(2000);
    // positional form: dbg, last_id, timeout
    expect((await c.call('UPDATES.get', ['e2e', [next], [0]])).ok).toBe(true);
  });

  it('a blocking get whose client goes away stops waiting (the waiters gauge drops)', async () => {
    const token = await lastId(c);
    const metricWaiters = async () =>
      parseMetrics(await metricsText(x)).find((s) => s.name === 'xenops_updates_waiters')?.value ?? -1;
    const before = await metricWaiters();
    const abort = new AbortController();
    const body = JSON.stringify({ method: 'UPDATES.get', id: 1, params: [{ debug_info: 'gone', last_id: token }] });
    const pending = fetch(x.url!, { method: 'POST', body, signal: abort.signal }).catch(() => 'aborted');
    await until(async () => (await metricWaiters()) === before + 1, 'the blocked call counted as a waiter');
    abort.abort();
    expect(await pending).toBe('aborted');
    await until(async () => (await metricWaiters()) === before, 'the abandoned call no longer waits');
  });

  it('a blocking get is woken by VM.start; 20 concurrent waiters are all woken', async () => {
    const id = await addVm(c);
    const token = await lastId(c);
    const waiters = Array.from({ length: 20 }, () => get(c, { last_id: token }));
    const metricWaiters = async () =>
      parseMetrics(await metricsText(x)).find((s) => s.name === 'xenops_updates_waiters')?.value ?? -1;
    await until(async () => (await metricWaiters()) >= 20, '20 blocked UPDATES.get calls in xenops_updates_waiters');
    const task = await c.ok<string>('VM.start', X({ id, paused: false }));
    const results = await Promise.all(waiters);
    for (const [, ids, next] of results) {
      expect(next).toBeGreaterThan(token);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.some(([k, v]) => (k === 'Vm' && v === id) || (k === 'Task' && v === task))).toBe(true);
    }
    expect((await waitTask(c, task)).state[0]).toBe('Completed');
    await until(async () => (await metricWaiters()) === 0, 'waiters gauge back to 0');
    const [, ids] = await get(c, { last_id: token, timeout: 0 });
    expect(ids).toEqual(expect.arrayContaining([['Vm', id], ['Task', task]]));
    // the Vm entry moves behind the task's creation (ascending seq)
    expect(ids.findIndex(([k]) => k === 'Task')).toBeGreaterThanOrEqual(0);
  });

  it('§10 worked example: a destroyed task vanishes; the VM and the unpause task remain, in seq order', async () => {
    const token = await lastId(c);
    const id = await addVm(c);
    const start = await c.ok<string>('VM.start', X({ id, paused: false }));
    expect((await waitTask(c, start)).state[0]).toBe('Completed');
    const unpause = await c.ok<string>('VM.unpause', X({ id }));
    expect((await waitTask(c, unpause)).state[0]).toBe('Completed');
    await c.ok('Task.destroy', X({ id: start }));
    const [barriers, ids, next] = await get(c, { last_id: token, timeout: 30 });
    expect(barriers).toEqual([]);
    expect(ids).toEqual([
      ['Vm', id],
      ['Task', unpause],
    ]);
    expect(next).toBeLessThan(await lastId(c)); // the destroy's own seq is not an id
    expect(await get(c, { last_id: next, timeout: 0 })).toEqual([[], [], next]);
  });

  it('inject_barrier / remove_barrier; refresh_vm', async () => {
    const id = await addVm(c);
    const token = await lastId(c);
    expect(await c.ok('UPDATES.inject_barrier', X({ vm_id: id, id: 41 }))).toBeNull();
    expect(await c.ok('UPDATES.inject_barrier', X({ vm_id: 'no-such-vm', id: 42 }))).toBeNull();
    const [barriers, ids, next] = await get(c, { last_id: token, timeout: 0 });
    expect(barriers).toEqual([
      [41, []],
      [42, []],
    ]);
    expect(ids).toEqual([]);
    expect(next).toBeGreaterThan(token);
    const [full] = await get(c, { timeout: 0 });
    expect(full.find(([b]) => b === 41)).toEqual([41, [['Vm', id]]]);
    expect(await c.ok('UPDATES.remove_barrier', X({ id: 41 }))).toBeNull();
    expect(await c.ok('UPDATES.remove_barrier', X({ id: 999999 }))).toBeNull();
    const [after] = await get(c, { last_id: token, timeout: 0 });
    expect(after).toEqual([[42, []]]);
    await c.ok('UPDATES.remove_barrier', X({ id: 42 }));

    const before = await lastId(c);
    expect(await c.ok('UPDATES.refresh_vm', X({ id }))).toBeNull();
    const [, refreshed] = await get(c, { last_id: before, timeout: 0 });
    expect(refreshed).toEqual([['Vm', id]]);
    expect(await c.fail('UPDATES.refresh_vm', X({ id: 'no-such-vm' }))).toEqual(['Does_not_exist', ['VM', 'no-such-vm/config']]);
  });

  it('XML-RPC: UPDATES.get encodes the result', async () => {
    const xml = c.withCodec('xml');
    const head = await lastId(c);
    const r = await xml.ok<Updates>('UPDATES.get', X({ last_id: head, timeout: 0 }));
    expect(r).toEqual([[], [], head]);
  });

  it('GET /metrics parses and has the §2.8 series', async () => {
    const samples = parseMetrics(await metricsText(x));
    const names = new Set(samples.map((s) => s.name));
    for (const n of [
      'xenops_rpc_requests_total',
      'xenops_rpc_request_duration_seconds_bucket',
      'xenops_rpc_request_duration_seconds_sum',
      'xenops_rpc_request_duration_seconds_count',
      'xenops_tasks',
      'xenops_vms',
      'xenops_log_sequence',
      'xenops_updates_waiters',
      'xenops_sse_clients',
    ]) {
      expect(names, n).toContain(n);
    }
    const started = samples.find((s) => s.name === 'xenops_rpc_requests_total' && s.labels.method === 'VM.start');
    expect(started?.labels).toMatchObject({ dialect: 'xenopsd', outcome: 'success' });
    expect(samples.filter((s) => s.name === 'xenops_tasks').map((s) => s.labels.state).sort()).toEqual(['completed', 'failed', 'pending']);
    expect(samples.find((s) => s.name === 'xenops_vms' && s.labels.power_state === 'Paused')?.value).toBeGreaterThanOrEqual(1);
    expect(samples.find((s) => s.name === 'xenops_log_sequence')?.value).toBe(await lastId(c));
    // The process's memory, as Prometheus client libraries name it.
    const rss = samples.find((s) => s.name === 'process_resident_memory_bytes')?.value ?? 0;
    const heap = samples.find((s) => s.name === 'nodejs_heap_size_used_bytes')?.value ?? 0;
    expect(rss).toBeGreaterThan(10 * 2 ** 20);
    expect(heap).toBeGreaterThan(0);
    expect(heap).toBeLessThan(rss);
  });

  it('a token stays valid across a restart', async () => {
    const id = await addVm(c);
    const [, , token] = await get(c, { timeout: 0 });
    await x.stop();
    x = await respawn(x);
    c = x.client();
    expect(await get(c, { last_id: token, timeout: 0 })).toEqual([[], [], token]);
    const waiting = get(c, { last_id: token, timeout: 20 });
    const task = await c.ok<string>('VM.start', X({ id, paused: true }));
    const [, ids, next] = await waiting;
    expect(next).toBeGreaterThan(token);
    expect(ids.some(([k, v]) => (k === 'Vm' && v === id) || (k === 'Task' && v === task))).toBe(true);
  });
});

describe('UPDATES and the RPC subject, NATS', () => {
  const prefix = uniquePrefix('upd');
  const hostId = `h-${uniqueSuffix()}`;
  /** A subject of our own: the classic one is shared by every gateway on the server (§2.7). */
  const queue = `xenops-e2e.${uniqueSuffix()}`;
  let agent: Xenopsd;
  let gw1: Xenopsd;
  let gw2: Xenopsd;

  beforeAll(async () => {
    await assertNatsReachable();
    const help = execFileSync(process.execPath, [XENOPSD_BIN, '--help'], { encoding: 'utf8' });
    const queueArgs = help.includes('--queue') ? ['--queue', queue] : [];
    const env = { XENOPS_QUEUE: queue };
    agent = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId, extraArgs: ['--socket', 'off'] });
    [gw1, gw2] = await Promise.all(
      [1, 2].map(() => spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId, extraArgs: queueArgs, env })),
    );
  });

  it('a token from one gateway is valid on another', async () => {
    const c1 = gw1.client();
    const c2 = gw2.client();
    const id = await addVm(c1);
    const token = await lastId(c1);
    expect(await get(c2, { last_id: token, timeout: 0 })).toEqual([[], [], token]);
    const waiting = get(c2, { last_id: token, timeout: 20 });
    const task = await c1.ok<string>('VM.start', X({ id, paused: false }));
    const [, ids, next] = await waiting;
    expect(next).toBeGreaterThan(token);
    expect(ids.some(([k, v]) => (k === 'Vm' && v === id) || (k === 'Task' && v === task))).toBe(true);
    expect((await waitTask(c2, task)).state[0]).toBe('Completed');
    const [, all1, n1] = await get(c1, { last_id: token, timeout: 0 });
    const [, all2, n2] = await get(c2, { last_id: token, timeout: 0 });
    expect([all2, n2]).toEqual([all1, n1]);
  });

  it('an RPC over the NATS subject gets exactly the HTTP reply; no reply subject; bad input', async () => {
    const c = gw1.client();
    const id = await addVm(c);
    const nc = await connect({ servers: NATS_URL });
    try {
      const bodies = [
        JSON.stringify({ method: 'VM.stat', id: 7, params: [{ debug_info: 'nats', id }] }),
        JSON.stringify({ jsonrpc: '2.0', method: 'VM.stat', id: 'x', params: { debug_info: 'nats', id: 'nope' } }),
        `<?xml version="1.0"?><methodCall><methodName>VM.exists</methodName><params><param><value><struct><member><name>debug_info</name><value>n</value></member><member><name>id</name><value>${id}</value></member></struct></value></param></params></methodCall>`,
        '{"method":',
        '<methodCall',
      ];
      for (const body of bodies) {
        const viaNats = new TextDecoder().decode((await nc.request(queue, body, { timeout: 10_000 })).data);
        const viaHttp = (await httpRequest({ url: gw2.url! }, { body })).body;
        expect(viaNats, body).toBe(viaHttp);
      }
      // without a reply subject: executed, not answered
      const id2 = vmId('nats-noreply');
      nc.publish(queue, JSON.stringify({ method: 'VM.add', id: 1, params: [{ debug_info: 'n', vm: xenopsdVm(id2) }] }));
      await until(async () => (await c.ok<boolean>('VM.exists', X({ id: id2 }))) === true, 'VM added over NATS without a reply');
      // a blocking UPDATES.get replies when it returns
      const token = await lastId(c);
      const pending = nc.request(queue, JSON.stringify({ method: 'UPDATES.get', id: 2, params: [{ debug_info: 'n', last_id: token, timeout: 20 }] }), {
        timeout: 25_000,
      });
      await c.ok('UPDATES.refresh_vm', X({ id }));
      const reply = JSON.parse(new TextDecoder().decode((await pending).data)) as { result: Updates };
      expect(reply.result[1]).toEqual([['Vm', id]]);
    } finally {
      await nc.close();
    }
  });
});
