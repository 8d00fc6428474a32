/**
 * Kill/restart rounds against a NATS cluster (gateway and agent as two xenopsd processes on a
 * private nats-server) under load, as an operator would try it (issue 17): each round one victim
 * (agent, gateway, both, or the nats-server) gets SIGKILL and is restarted on the same store;
 * the recovery time of the round is how long after the restart the service is steadily back.
 */
import { X } from './rpc.js';
import type { OwnNatsServer } from './own-nats.js';
import { respawn, type Xenopsd } from './xenopsd.js';
import { xenopsdVm, vmId } from './vms.js';

export type Victim = 'agent' | 'gateway' | 'both' | 'nats';
export const VICTIMS: readonly Victim[] = ['nats', 'agent', 'gateway', 'both'];

export interface FaultCluster {
  gateway: Xenopsd;
  agent: Xenopsd;
}

export interface RoundResult {
  readonly round: number;
  readonly victim: Victim;
  /** ms from the restart (victim listening again) until every later probe succeeded in time. */
  readonly recoveryMs: number;
  /** Probes that failed or were slow after the restart. */
  readonly badProbes: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A write then a read through the gateway, each bounded by `timeoutMs`: true when both succeed. */
async function probe(cluster: FaultCluster, timeoutMs: number): Promise<boolean> {
  const deadline = new Promise<false>((r) => setTimeout(() => r(false), timeoutMs).unref());
  const attempt = (async () => {
    try {
      const c = cluster.gateway.client();
      const id = vmId('probe');
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      await c.ok('VM.stat', X({ id }));
      return true;
    } catch {
      return false;
    }
  })();
  return Promise.race([attempt, deadline]);
}

/**
 * Load: `clients` loops adding VMs through the gateway; every acknowledged add is recorded in
 * `acked` (it must be found afterwards). Failures are expected during faults and ignored.
 */
export function startLoad(cluster: FaultCluster, clients: number, acked: Set<string>): { stop(): Promise<void> } {
  let stopped = false;
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped) {
      const id = vmId('load');
      try {
        await cluster.gateway.client().ok('VM.add', X({ vm: xenopsdVm(id) }));
        acked.add(id);
      } catch {
        await sleep(50);
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * Kills `victim` with SIGKILL, restarts it on the same store, and measures the recovery: probes
 * (write + read, each bounded by `probeTimeoutMs`) run back to back for `observeMs` after the
 * restart; the recovery is the end of the last bad probe (0 when none failed).
 */
export async function faultRound(
  round: number,
  victim: Victim,
  cluster: FaultCluster,
  nats: OwnNatsServer,
  opts: { observeMs: number; probeTimeoutMs: number },
): Promise<RoundResult> {
  if (victim === 'nats') {
    await nats.stop('SIGKILL');
    await sleep(300);
    await nats.start();
  } else {
    const procs = victim === 'both' ? (['agent', 'gateway'] as const) : ([victim] as const);
    await Promise.all(procs.map((p) => cluster[p].kill9()));
    // The agent first: a gateway alone answers writes with "no agent".
    for (const p of procs) cluster[p] = await respawn(cluster[p]);
  }
  const restarted = Date.now();
  let lastBadEnd = restarted;
  let badProbes = 0;
  while (Date.now() - restarted < opts.observeMs) {
    const ok = await probe(cluster, opts.probeTimeoutMs);
    if (!ok) {
      badProbes++;
      lastBadEnd = Date.now();
      await sleep(20);
    }
  }
  return { round, victim, recoveryMs: lastBadEnd - restarted, badProbes };
}
