/**
 * The change stream (API.md §9.4): `GET /events` as Server-Sent Events (live, resume, filters,
 * closing with the gateway) and the NATS publication on `xenops.updates.<kind>.<id>`.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { X, waitTask, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, NATS_URL, spawnXenopsd, startNatsCluster, type NatsCluster, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

interface Sse {
  id: number;
  event: string;
  data: { seq: number; kind: string; id: [string, unknown]; change: [string, [unknown, unknown[]]]; event: string; dbg: string; time: string; host: string; actor: string };
}

interface SseClient {
  readonly events: Sse[];
  /** Everything received, raw. */
  readonly raw: () => string;
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens `GET /events` and parses the stream as it arrives. */
function openSse(x: Xenopsd, query = '', headers: Record<string, string> = {}): Promise<SseClient> {
  const u = new URL(x.url!);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), path: `/events${query}`, method: 'GET', headers, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /events${query}: HTTP ${res.statusCode}`));
      expect(String(res.headers['content-type'])).toMatch(/^text\/event-stream/);
      const events: Sse[] = [];
      let raw = '';
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        pending += chunk;
        let i: number;
        while ((i = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, i);
          pending = pending.slice(i + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(': ');
            if (c > 0) fields[line.slice(0, c)] = line.slice(c + 2);
          }
          if (fields.data !== undefined) events.push({ id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data) });
        }
      });
      const ended = new Promise<void>((r) => {
        res.on('end', r);
        res.on('close', r);
        res.on('error', () => r());
      });
      resolve({ events, raw: () => raw, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const key = (e: Sse) => `${e.id}/${JSON.stringify(e.data.id)}`;

describe('GET /events (embedded)', () => {
  let x: Xenopsd;
  let c: RpcClient;
  beforeAll(async () => {
    x = await spawnXenopsd({ mode: 'embedded' });
    c = x.client();
  });

  it('streams records for add and start; resume with Last-Event-ID sees exactly the missed records; filters', async () => {
    const all = await openSse(x);
    expect(all.raw().startsWith('retry: 2000\n\n')).toBe(true);
    const id = vmId('sse');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }, 'sse-add'));
    await until(() => all.events.some((e) => e.data.event === 'VmAdded' && e.data.id[1] === id), 'the VmAdded record');
    const added = all.events.find((e) => e.data.event === 'VmAdded')!;
    expect(added.event).toBe('vm');
    expect(added.data).toMatchObject({ seq: added.id, kind: 'vm', id: ['Vm', id], dbg: 'sse-add' });
    expect(added.data.change[0]).toBe('Vm_t');
    expect(added.data.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    // a second client that disconnects after the add
    const early = await openSse(x);
    const resumeFrom = added.id;
    early.close();

    const task = await c.ok<string>('VM.start', X({ id, paused: false }, 'sse-start'));
    expect((await waitTask(c, task)).state[0]).toBe('Completed');
    await c.ok('Task.destroy', X({ id: task }));
    await until(() => all.events.some((e) => e.data.kind === 'task' && e.data.change[1][1].length === 0), 'the task removal record');

    const missed = all.events.filter((e) => e.id > resumeFrom);
    expect(missed.some((e) => e.data.kind === 'vm' && (e.data.change[1][1][0] as unknown[])[1] !== undefined)).toBe(true);
    const byHeader = await openSse(x, '?since=0', { 'Last-Event-ID': String(resumeFrom) });
    const byQuery = await openSse(x, `?since=${resumeFrom}`);
    await until(() => byHeader.events.length >= missed.length && byQuery.events.length >= missed.length, 'the replay');
    await new Promise((r) => setTimeout(r, 100));
    expect(byHeader.events.map(key)).toEqual(missed.map(key));
    expect(byQuery.events.map(key)).toEqual(missed.map(key));
    // replayed values are the values as of their seq: identical to what the live stream sent
    expect(byQuery.events.map((e) => e.data)).toEqual(missed.map((e) => e.data));
    const states = missed.filter((e) => e.data.kind === 'vm').map((e) => (e.data.change[1][1][0] as [unknown, { power_state: string }])[1].power_state);
    expect(states.at(-1)).toBe('Paused');
    expect(missed.filter((e) => e.data.kind === 'task').at(-1)!.data.change).toEqual(['Task_t', [task, []]]);

    // then live, without gap or duplicate
    const kinds = await openSse(x, `?kind=task&since=${resumeFrom}`);
    const vmOnly = await openSse(x, `?vm=${encodeURIComponent(id)}&since=0`);
    const other = vmId('sse-other');
    await c.ok('VM.add', X({ vm: xenopsdVm(other) }));
    await c.ok('UPDATES.refresh_vm', X({ id }));
    await until(() => byHeader.events.some((e) => e.data.event === 'VmRefreshed'), 'the refresh record, live');
    await until(() => vmOnly.events.some((e) => e.data.event === 'VmRefreshed'), 'the refresh record, filtered');
    await until(() => all.events.some((e) => e.data.event === 'VmRefreshed'), 'the refresh record, first client');
    expect(byHeader.events.map(key)).toEqual(all.events.filter((e) => e.id > resumeFrom).map(key));
    expect(kinds.events.every((e) => e.data.kind === 'task')).toBe(true);
    expect(kinds.events.length).toBeGreaterThan(0);
    expect(vmOnly.events.every((e) => e.data.id[0] === 'Vm' && e.data.id[1] === id)).toBe(true);
    expect(vmOnly.events.map((e) => e.data.event)).toEqual(expect.arrayContaining(['VmAdded', 'VmRefreshed']));
    for (const s of [all, byHeader, byQuery, kinds, vmOnly]) s.close();
  });

  it('rejects a malformed resume point; streams end when the gateway stops', async () => {
    const u = new URL(x.url!);
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: u.hostname, port: Number(u.port), path: '/events?since=abc', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    expect(status).toBe(400);
    const s = await openSse(x);
    await until(async () => {
      const m = await fetch(`${x.url}/metrics`).then((r) => r.text());
      return /^xenops_sse_clients 1$/m.test(m);
    }, 'xenops_sse_clients 1');
    const t0 = Date.now();
    const code = await x.stop();
    await s.ended;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(4000);
  });
});

describe('NATS publication of change records', () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await startNatsCluster();
  });

  it('subscribers on xenops.updates.> receive the records', async () => {
    const c = cluster.client();
    const nc = await connect({ servers: NATS_URL });
    try {
      const id = vmId('pub');
      const got: Array<{ subject: string; data: Sse['data'] }> = [];
      const sub = nc.subscribe('xenops.updates.>', {
        callback: (_err, msg) => {
          const data = JSON.parse(new TextDecoder().decode(msg.data)) as Sse['data'];
          if (data.id[1] === id || data.kind === 'task') got.push({ subject: msg.subject, data });
        },
      });
      await nc.flush();
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      const task = await c.ok<string>('VM.start', X({ id, paused: false }));
      await until(() => got.some((g) => g.subject === `xenops.updates.task.${task}` && g.data.change[1][1].length === 1 && (g.data.change[1][1][0] as { state: [string] }).state[0] === 'Completed'), 'the task completion record');
      const vmRecords = got.filter((g) => g.data.kind === 'vm');
      expect(vmRecords[0]).toMatchObject({ subject: `xenops.updates.vm.${id}`, data: { event: 'VmAdded', id: ['Vm', id] } });
      expect(vmRecords.map((g) => g.data.seq)).toEqual([...vmRecords.map((g) => g.data.seq)].sort((a, b) => a - b));
      sub.unsubscribe();
    } finally {
      await nc.close();
    }
  });
});
