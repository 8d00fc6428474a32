/**
 * NATS faults (issue 17): gateway and agent as two xenopsd processes on a private nats-server.
 * Kill/restart rounds under load (one victim per round: nats-server, agent, gateway, both), the
 * recovery of each printed; nothing acknowledged is lost; the slowest recovery is bounded.
 * `XENOPS_FAULT_ROUNDS=20` runs the operator's 20 rounds (CI runs 5).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest, X } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { faultRound, startLoad, VICTIMS, type RoundResult } from '../support/fault-rounds.js';
import { startClusterOn, startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { cleanupAll } from '../support/xenopsd.js';
import { addStarted, waitEnd, XENOPSD } from '../support/ops.js';

const ROUNDS = Number(process.env.XENOPS_FAULT_ROUNDS ?? 5);
const CLIENTS = Number(process.env.XENOPS_FAULT_CLIENTS ?? 8);
/** Generous for a loaded 2-core CI machine; the target (2 s) is reported by the print. */
const RECOVERY_BOUND_MS = Number(process.env.XENOPS_FAULT_RECOVERY_BOUND_MS ?? 4_000);

const servers: OwnNatsServer[] = [];
afterAll(async () => {
  await cleanupAll();
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
});

async function ownServer(): Promise<OwnNatsServer> {
  const s = await startOwnNatsServer();
  servers.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function health(url: string): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const r = await httpRequest({ url }, { method: 'GET', path: '/healthz', timeoutMs: 3_000 });
  return { status: r.status, body: JSON.parse(r.body) as { status: string; reason?: string } };
}

async function metric(url: string, name: string): Promise<number | undefined> {
  const r = await httpRequest({ url }, { method: 'GET', path: '/metrics', timeoutMs: 3_000 });
  const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** Polls `f` every 50 ms until it returns true; resolves with the ms it took, or fails after `limitMs`. */
async function within(limitMs: number, what: string, f: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await f().catch(() => false)) return Date.now() - start;
    if (Date.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(50);
  }
}

describe('NATS faults', () => {
  it(`${ROUNDS} kill -9 rounds under load from ${CLIENTS} clients: back within the bound every round, nothing acknowledged lost`, async () => {
    const nats = await ownServer();
    const cluster = await startClusterOn(nats.url);
    const acked = new Set<string>();
    const load = startLoad(cluster, CLIENTS, acked);
    const results: RoundResult[] = [];
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const victim = VICTIMS[(round - 1) % VICTIMS.length]!;
        const r = await faultRound(round, victim, cluster, nats, { observeMs: victim === 'nats' ? 10_000 : 5_000, probeTimeoutMs: 1_000 });
        results.push(r);
        process.stdout.write(`fault round ${round} (${victim}): recovered in ${r.recoveryMs} ms (${r.badProbes} bad probe(s))\n`);
      }
    } finally {
      await load.stop();
    }
    const slowest = results.reduce((a, b) => (b.recoveryMs > a.recoveryMs ? b : a));
    process.stdout.write(`fault rounds: slowest recovery ${slowest.recoveryMs} ms (round ${slowest.round}, ${slowest.victim}); ${acked.size} acknowledged writes\n`);

    const listed = await cluster.gateway.client().ok<[Record<string, unknown>, unknown][]>('VM.list', X());
    const present = new Set(listed.map(([vm]) => vm.id as string));
    const lost = [...acked].filter((id) => !present.has(id));
    expect(lost).toEqual([]);
    expect(acked.size).toBeGreaterThan(ROUNDS * 10);
    expect(slowest.recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
  }, 60_000 + ROUNDS * 25_000);

  it('/healthz says 503 with the reason while NATS is down and 200 again once a write would succeed; calls and blocked UPDATES.get fail fast meanwhile; /metrics shows it', async () => {
    const nats = await ownServer();
    const cluster = await startClusterOn(nats.url);
    const url = cluster.gateway.url!;
    expect((await health(url)).status).toBe(200);
    expect(await metric(url, 'xenops_store_up')).toBe(1);
    await cluster.gateway.client().ok('VM.add', X({ vm: xenopsdVm(vmId('before')) }));
    const appendedAt = await metric(url, 'xenops_store_last_append_timestamp_seconds');
    expect(appendedAt).toBeGreaterThan(Date.now() / 1000 - 60);

    // A blocked UPDATES.get with no timeout: what it waits for may not come while NATS is away.
    const token = await cluster.gateway.client().ok<number>('UPDATES.last_id', X());
    const blocked = cluster.gateway.client().named('UPDATES.get', X({ last_id: token }));
    await sleep(200);

    await nats.stop('SIGKILL');
    const killedAt = Date.now();
    const seen503 = await within(2_000, '/healthz 503', async () => (await health(url)).status === 503);
    const unblocked = await blocked;
    const unblockedMs = Date.now() - killedAt;
    expect(unblocked.ok).toBe(false);
    expect((unblocked as { error: unknown[] }).error).toEqual(['Internal_error', expect.stringMatching(/^the store is unavailable: .*NATS at .* is unreachable/)]);
    expect(unblockedMs).toBeLessThan(2_000);
    const down = await health(url);
    expect(down.body.status).toBe('unavailable');
    expect(down.body.reason).toMatch(/NATS at nats:\/\/127\.0\.0\.1:\d+ is unreachable/);
    expect(await metric(url, 'xenops_store_up')).toBe(0);
    expect(await metric(url, 'xenops_store_last_append_timestamp_seconds')).toBe(appendedAt);
    // A write during the outage fails at once with a typed error; nothing is acknowledged.
    const t0 = Date.now();
    const failed = await cluster.gateway.client().named('VM.add', X({ vm: xenopsdVm(vmId('during')) }));
    const tookMs = Date.now() - t0;
    expect(failed.ok).toBe(false);
    expect((failed as { error: unknown[] }).error[0]).toBe('Internal_error');
    expect(tookMs).toBeLessThan(2_000);
    // Polled through the outage: it stays 503.
    for (let i = 0; i < 10; i++) {
      expect((await health(url)).status).toBe(503);
      await sleep(100);
    }

    await nats.start();
    const back = await within(2_000, '/healthz 200 after the restart', async () => (await health(url)).status === 200);
    // 200: the gateway's store takes writes again; the agent (its own connection) is back within
    // the same 2 s, so a write through it succeeds.
    const writable = await within(2_000, 'a write after the restart', async () => (await cluster.gateway.client().named('VM.add', X({ vm: xenopsdVm(vmId('after')) }))).ok);
    expect(await metric(url, 'xenops_store_up')).toBe(1);
    process.stdout.write(`healthz: 503 ${seen503} ms after NATS died, a blocked UPDATES.get failed after ${unblockedMs} ms, a write failed in ${tookMs} ms, 200 ${back} ms after it was back, a write through the agent ${writable} ms later\n`);
  }, 60_000);

  it('SIGTERM while NATS is down: gateway and agent exit within 5 s', async () => {
    const nats = await ownServer();
    const cluster = await startClusterOn(nats.url);
    const load = startLoad(cluster, 4, new Set());
    await sleep(500);
    await nats.stop('SIGKILL');
    await sleep(500);
    const t0 = Date.now();
    const [gw, agent] = await Promise.all(
      [cluster.gateway, cluster.agent].map(async (p) => {
        p.proc.kill('SIGTERM');
        await p.exited();
        return Date.now() - t0;
      }),
    );
    await load.stop();
    if (process.env.XENOPS_FAULT_DEBUG) process.stdout.write(cluster.gateway.stderr);
    process.stdout.write(`SIGTERM during an outage: gateway out in ${gw} ms, agent in ${agent} ms\n`);
    expect(gw).toBeLessThan(5_000);
    expect(agent).toBeLessThan(5_000);
  }, 30_000);

  it('a task whose progress could not be written while NATS was down fails as such, not as a service restart', async () => {
    const nats = await ownServer();
    const cluster = await startClusterOn(nats.url);
    const c = cluster.gateway.client();
    const vm = await addStarted(c, XENOPSD);
    // The guest never acknowledges: the shutdown waits 2 s, then writes that it gave up.
    await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [vm, 'hang'] }));
    const task = await c.ok<string>('VM.shutdown', X({ id: vm, delay: 2 }, 'fault-shutdown'));
    await sleep(300);
    await nats.stop('SIGKILL');
    await sleep(3_500); // the task's next write fails meanwhile
    await nats.start();
    const end = await waitEnd(cluster.gateway.client(), 'xenopsd', task, 20_000);
    expect(end).toEqual({ state: 'Failed', error: ['Internal_error', 'Interrupted: the event log could not be written (the store was unreachable)'] });
  }, 60_000);
});
