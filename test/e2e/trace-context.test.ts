/**
 * W3C trace context (issue 16 item 4): a `traceparent` given as an HTTP header, a NATS header on
 * the §2.7 subject, or after a newline in `dbg` (xapi's convention) is carried into the NATS
 * header of the command the gateway sends to the agent, the audit `dbg` of every event the call
 * caused (`GET /log` shows it as `traceparent`), and the change records (`GET /events`, NATS).
 * An invalid one is ignored, as W3C asks. Real NATS, gateway and agent as two processes.
 */
import { connect, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X, waitTask, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, NATS_URL, spawnXenopsd, uniquePrefix, uniqueSuffix, type Xenopsd } from '../support/xenopsd.js';

const traceparent = (parent: string) => `00-${'4bf92f3577b34da6a3ce929d0e0e4736'}-${parent}-01`;

let nc: NatsConnection;
let gateway: Xenopsd;
let c: RpcClient;
const prefix = uniquePrefix('trace');
const rpcSubject = `${prefix}.rpc`;
const commands: Msg[] = [];
const changes: Array<{ subject: string; data: Record<string, unknown> }> = [];
const subs: Subscription[] = [];

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  // Plain subscribers see every command and change record besides the services' queue groups.
  subs.push(nc.subscribe(`${prefix}.cmd.>`, { callback: (_e, m) => void commands.push(m) }));
  subs.push(nc.subscribe('xenops.updates.vm.>', { callback: (_e, m) => void changes.push({ subject: m.subject, data: m.json() }) }));
  await nc.flush();
  const hostId = `h-${uniqueSuffix()}`;
  await spawnXenopsd({ mode: 'nats', role: 'agent', hostId, natsPrefix: prefix, extraArgs: ['--socket', 'off'] });
  // Its own JSON-RPC subject: other test files' gateways share the server.
  gateway = await spawnXenopsd({ mode: 'nats', role: 'gateway', hostId, natsPrefix: prefix, extraArgs: ['--queue', rpcSubject] });
  c = gateway.client();
}, 60_000);

afterAll(async () => {
  for (const s of subs) s.unsubscribe();
  await nc?.close();
  await cleanupAll();
});

/** A JSON-RPC v1 call over HTTP with extra headers. */
async function callWith(headers: Record<string, string>, method: string, params: Record<string, unknown>): Promise<unknown> {
  const r = await c.raw(JSON.stringify({ method, params: [params], id: 1 }), { method: 'POST', path: '/', headers: { 'content-type': 'application/json', ...headers } });
  const body = JSON.parse(r.body.toString()) as { result: unknown; error: unknown };
  expect(body.error).toBeNull();
  return body.result;
}

async function logOf(vm: string): Promise<Array<{ event: string; dbg: string; traceparent?: string }>> {
  const text = await fetch(`${gateway.url}/log?vm=${vm}`).then((r) => r.text());
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; dbg: string; traceparent?: string });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const headerOf = (m: Msg) => m.headers?.get('traceparent') || undefined;

/**
 * The commands seen since `from`. A call's reply can overtake our own copy of its command (they
 * reach us on different connections), so first round-trip our connection: the server queued the
 * command to us before the reply left, and our PONG after it.
 */
async function commandsSince(from: number): Promise<Msg[]> {
  await nc.flush();
  return commands.slice(from);
}

describe('trace context', () => {
  it('an HTTP traceparent header reaches the command header, every event of the call and its change records', async () => {
    const tp = traceparent('00f067aa0ba902b7');
    const id = vmId('trace');
    const sentBefore = commands.length;
    await callWith({ traceparent: tp }, 'VM.add', { debug_info: 'ops-add', vm: xenopsdVm(id) });
    const task = (await callWith({ traceparent: tp }, 'VM.start', { debug_info: 'ops-start', id, paused: false })) as string;
    await waitTask(c, task);
    const sent = await commandsSince(sentBefore);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    for (const m of sent) expect(headerOf(m)).toBe(tp);

    const log = await logOf(id);
    expect(log.length).toBeGreaterThan(3);
    for (const e of log) {
      expect(e.traceparent, e.event).toBe(tp);
      expect(e.dbg).toMatch(/^ops-(add|start)\n/);
    }
    await until('change records of the VM', () => changes.some((r) => r.data.id !== undefined && JSON.stringify(r.data.id).includes(id)));
    const mine = changes.filter((r) => JSON.stringify(r.data.id).includes(id));
    for (const r of mine) expect(r.data.traceparent).toBe(tp);
  });

  it("a traceparent after a newline in dbg (xapi's convention) is carried the same way, and wins over a header", async () => {
    const own = traceparent('1111111111111111');
    const id = vmId('trace-dbg');
    const sentBefore = commands.length;
    await callWith({ traceparent: traceparent('2222222222222222') }, 'VM.add', { debug_info: `xapi-task\n${own}`, vm: xenopsdVm(id) });
    expect((await commandsSince(sentBefore)).map(headerOf)).toContain(own);
    const log = await logOf(id);
    expect(log.map((e) => [e.dbg, e.traceparent])).toEqual(log.map(() => [`xapi-task\n${own}`, own]));
  });

  it('a traceparent header on the §2.7 NATS subject is carried too', async () => {
    const tp = traceparent('3333333333333333');
    const id = vmId('trace-nats');
    const h = natsHeaders();
    h.set('traceparent', tp);
    const sentBefore = commands.length;
    const reply = await nc.request(rpcSubject, JSON.stringify({ method: 'VM.add', params: [{ debug_info: 'over-nats', vm: xenopsdVm(id) }], id: 1 }), { headers: h, timeout: 10_000 });
    expect(reply.json()).toMatchObject({ result: id, error: null });
    expect((await commandsSince(sentBefore)).map(headerOf)).toContain(tp);
    const log = await logOf(id);
    expect(log.length).toBeGreaterThan(0);
    for (const e of log) expect([e.dbg, e.traceparent]).toEqual([`over-nats\n${tp}`, tp]);
  });

  it('an invalid traceparent is ignored: the call works and carries none', async () => {
    const id = vmId('trace-bad');
    const sentBefore = commands.length;
    await callWith({ traceparent: 'ff-not-a-trace' }, 'VM.add', { debug_info: 'plain', vm: xenopsdVm(id) });
    const sent = await commandsSince(sentBefore);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.map(headerOf)).toEqual(sent.map(() => undefined));
    for (const e of await logOf(id)) {
      expect(e.dbg).toBe('plain');
      expect(e.traceparent).toBeUndefined();
    }
  });
});
