/**
 * NATS faults (issue 17): gateway and agent as two xenopsd processes on a private nats-server.
 * Kill/restart rounds under load (one victim per round: nats-server, agent, gateway, both), the
 * recovery of each printed; nothing acknowledged is lost; the slowest recovery is bounded.
 * `XENOPS_FAULT_ROUNDS=20` runs the operator's 20 rounds (CI runs 5).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { X } from '../support/rpc.js';
import { faultRound, startLoad, VICTIMS, type RoundResult } from '../support/fault-rounds.js';
import { startClusterOn, startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { cleanupAll } from '../support/xenopsd.js';

const ROUNDS = Number(process.env.XENOPS_FAULT_ROUNDS ?? 5);
const CLIENTS = Number(process.env.XENOPS_FAULT_CLIENTS ?? 8);
/** Generous for a loaded 2-core CI machine; the target (2 s) is reported by the print. */
const RECOVERY_BOUND_MS = Number(process.env.XENOPS_FAULT_RECOVERY_BOUND_MS ?? 4_000);

let nats: OwnNatsServer | undefined;
afterAll(async () => {
  await cleanupAll();
  await nats?.stop('SIGKILL');
});

describe('NATS faults', () => {
  it(`${ROUNDS} kill -9 rounds under load from ${CLIENTS} clients: back within the bound every round, nothing acknowledged lost`, async () => {
    nats = await startOwnNatsServer();
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
});
