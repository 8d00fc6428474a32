/**
 * Durability across restarts (API.md §7.1, §9.1, §9.2; ARCHITECTURE.md invariants 1 and 4):
 * graceful stop and kill -9 of the embedded service, of the NATS gateway and of the NATS agent.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest, RpcClient, X, waitPower, waitTask, type XenopsdTask } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, respawn, spawnXenopsd, startNatsCluster, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

type Stat = [Record<string, unknown>, { power_state: string; domids: number[] } & Record<string, unknown>];
const INTERRUPTED = ['Internal_error', 'Interrupted by service restart'];

/** A few VMs in each power state: Halted, Paused, Running. Returns their ids. */
async function populate(c: RpcClient): Promise<string[]> {
  const ids = [vmId('halted'), vmId('paused'), vmId('running'), vmId('running')];
  for (const id of ids) await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
  for (const id of ids.slice(1)) expect((await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })))).state[0]).toBe('Completed');
  for (const id of ids.slice(2)) expect((await waitTask(c, await c.ok<string>('VM.unpause', X({ id })))).state[0]).toBe('Completed');
  return ids;
}

async function snapshot(c: RpcClient): Promise<{ vms: Stat[]; tasks: XenopsdTask[]; head: number }> {
  return {
    vms: await c.ok<Stat[]>('VM.list', X()),
    tasks: await c.ok<XenopsdTask[]>('Task.list', X()),
    head: await c.ok<number>('UPDATES.last_id', X()),
  };
}

function powerOf(s: { vms: Stat[] }, id: string): string | undefined {
  return s.vms.find(([v]) => v.id === id)?.[1].power_state;
}

/** After a restart: the same VMs, power states and tasks; new work gets higher ids. */
async function expectSameStateAndUsable(c: RpcClient, before: Awaited<ReturnType<typeof snapshot>>, ids: string[]): Promise<void> {
  const after = await snapshot(c);
  expect(after.vms).toEqual(before.vms);
  expect(after.tasks).toEqual(before.tasks);
  expect(after.head).toBeGreaterThanOrEqual(before.head);
  expect(ids.map((id) => powerOf(after, id))).toEqual(['Halted', 'Paused', 'Running', 'Running']);
  // The service still works and ids keep increasing across the restart (§9.2).
  const t = await c.ok<string>('VM.unpause', X({ id: ids[1] }));
  expect(Number(t)).toBeGreaterThan(Math.max(before.head, ...before.tasks.map((x) => Number(x.id))));
  expect((await waitTask(c, t)).state[0]).toBe('Completed');
  expect((await c.ok<Stat>('VM.stat', X({ id: ids[1] })))[1].power_state).toBe('Running');
  const p = await c.ok<string>('VM.pause', X({ id: ids[1] }));
  expect((await waitTask(c, p)).state[0]).toBe('Completed');
  await c.ok('Task.destroy', X({ id: t }));
  await c.ok('Task.destroy', X({ id: p }));
  // Domids are never reused, restarts included (§8.1).
  const used = before.vms.flatMap(([, st]) => st.domids);
  const fresh = vmId('fresh');
  await c.ok('VM.add', X({ vm: xenopsdVm(fresh) }));
  expect((await waitTask(c, await c.ok<string>('VM.start', X({ id: fresh, paused: false })))).state[0]).toBe('Completed');
  const [, st] = await c.ok<Stat>('VM.stat', X({ id: fresh }));
  expect(st.domids).toHaveLength(1);
  expect(st.domids[0]).toBeGreaterThan(Math.max(0, ...used));
}

/**
 * Queues many starts, kills the process executing them, restarts it, and checks invariant 1:
 * every task ends Completed or Failed "Interrupted by service restart", and no VM is stuck.
 */
/** `hold`: seconds of VM.delay queued before each start, so that work is still queued at a kill. */
async function queueStarts(c: RpcClient, n: number, hold = 0): Promise<{ ids: string[]; tasks: string[] }> {
  const ids = Array.from({ length: n }, () => vmId('queued'));
  await Promise.all(ids.map((id) => c.ok('VM.add', X({ vm: xenopsdVm(id) }))));
  if (hold > 0) await Promise.all(ids.map((id) => c.ok<string>('VM.delay', X({ id, delay: hold }, 'hold'))));
  const tasks = await Promise.all(ids.map((id) => c.ok<string>('VM.start', X({ id, paused: false }, 'queued'))));
  return { ids, tasks };
}

async function expectAllTasksEndAndNoVmStuck(c: RpcClient, ids: string[], tasks: string[]): Promise<void> {
  const ended = await Promise.all(tasks.map((t) => waitTask(c, t, { timeoutMs: 30_000 })));
  if (process.env.E2E_VERBOSE) {
    const count = (s: string) => ended.filter((t) => t.state[0] === s).length;
    process.stderr.write(`after restart: ${count('Completed')} completed, ${count('Failed')} failed of ${ended.length}\n`);
  }
  for (const t of ended) {
    if (t.state[0] === 'Failed') expect(t.state[1], `task ${t.id}`).toEqual(INTERRUPTED);
    else expect(t.state[0], `task ${t.id}`).toBe('Completed');
  }
  // Each VM ends consistent with its task: started → Paused; interrupted → torn down to Halted
  // (§7.3, the state check runs as an internal task, so wait for it).
  await Promise.all(
    ids.map(async (id, i) => {
      const want = ended[i]!.state[0] === 'Completed' ? 'Paused' : 'Halted';
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ps = (await c.ok<Stat>('VM.stat', X({ id })))[1].power_state;
        if (ps === want) break;
        if (Date.now() > deadline) throw new Error(`VM ${id}: ${ps}, expected ${want} after task ${JSON.stringify(ended[i]!.state)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  // No VM is stuck: every one still accepts and completes an operation.
  await Promise.all(
    ids.map(async (id) => {
      const t = await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })), { timeoutMs: 30_000 });
      expect(t.state[0], `shutdown of ${id}`).toBe('Completed');
      expect((await c.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Halted');
    }),
  );
  const pending = (await c.ok<XenopsdTask[]>('Task.list', X())).filter((t) => t.state[0] === 'Pending');
  expect(pending).toEqual([]);
}

describe('embedded store', () => {
  it('SIGTERM then restart on the same data dir keeps VMs, power states and tasks', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded' });
    const ids = await populate(svc.client());
    const before = await snapshot(svc.client());
    const health1 = JSON.parse((await httpRequest({ url: svc.url }, { method: 'GET', path: '/healthz' })).body) as Record<string, unknown>;
    expect(health1).toMatchObject({ status: 'ok', mode: 'embedded' });

    expect(await svc.stop('SIGTERM')).toBe(0);
    svc = await respawn(svc);
    const health2 = JSON.parse((await httpRequest({ url: svc.url }, { method: 'GET', path: '/healthz' })).body) as Record<string, unknown>;
    expect(health2.seq).toBe(health1.seq);
    expect(health2.instance_id).not.toBe(health1.instance_id);
    await expectSameStateAndUsable(svc.client(), before, ids);

    // And once more with SIGINT.
    const before2 = await snapshot(svc.client());
    expect(await svc.stop('SIGINT')).toBe(0);
    svc = await respawn(svc);
    expect(await snapshot(svc.client())).toEqual(before2);
    await svc.stop();
  });

  it('kill -9 then restart keeps every acknowledged write', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded' });
    const ids = await populate(svc.client());
    const before = await snapshot(svc.client());
    await svc.kill9();
    svc = await respawn(svc);
    await expectSameStateAndUsable(svc.client(), before, ids);
    await svc.stop();
  });

  it('kill -9 with queued tasks: every task ends after the restart, no VM stuck', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--pool-size', '1'] });
    const c = svc.client();
    const ids = Array.from({ length: 120 }, () => vmId('queued'));
    await Promise.all(ids.map((id) => c.ok('VM.add', X({ vm: xenopsdVm(id) }))));
    // Fire all starts; kill -9 as soon as a third of them are acknowledged, so that the process
    // dies with tasks queued, running and still arriving.
    const acked: { id: string; task: string }[] = [];
    let killed: Promise<void> | undefined;
    await Promise.allSettled(
      ids.map(async (id) => {
        const task = await c.ok<string>('VM.start', X({ id, paused: false }, 'queued'));
        if (!killed) acked.push({ id, task });
        if (acked.length >= 40 && !killed) killed = svc.kill9();
      }),
    );
    await killed;
    expect(acked.length).toBeGreaterThanOrEqual(40);
    const tasks = acked.map((a) => a.task);
    svc = await respawn(svc);
    await expectAllTasksEndAndNoVmStuck(svc.client(), acked.map((a) => a.id), tasks);
    // The VMs whose start was never acknowledged may or may not have a task; none is stuck.
    const rest = ids.filter((id) => !acked.some((a) => a.id === id));
    await expectAllTasksEndAndNoVmStuck(svc.client(), [], []);
    for (const id of rest) {
      const t = await waitTask(svc.client(), await svc.client().ok<string>('VM.shutdown', X({ id })), { timeoutMs: 30_000 });
      expect(t.state[0]).toBe('Completed');
    }
    await svc.stop();
  });

  it('with no snapshot at all, the log is folded once: the agent starts from the read model\u2019s fold', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded' });
    const ids = await populate(svc.client());
    const before = await snapshot(svc.client());
    expect(await svc.stop('SIGTERM')).toBe(0);
    const db = new Database(path.join(svc.dataDir, 'xenops.db'));
    db.exec('DELETE FROM snapshots');
    db.close();
    svc = await respawn(svc);
    expect(svc.stderr).toMatch(/read model at seq (\d+)/);
    const seq = /read model at seq (\d+)/.exec(svc.stderr)![1];
    // Not "from <n> log message(s)" of its own fold of the whole log.
    expect(svc.stderr).toMatch(new RegExp(`agent e2e-host: recovered \\d+ VM\\(s\\) from the snapshot at seq ${seq} and 0 log message\\(s\\)`));
    await expectSameStateAndUsable(svc.client(), before, ids);
    await svc.stop();
  });

  it('DEBUG.shutdown stops the process with exit code 0 and the state survives', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded' });
    const ids = await populate(svc.client());
    const before = await snapshot(svc.client());
    expect(await svc.client().ok('DEBUG.shutdown', X())).toBeNull();
    expect(await svc.exited()).toBe(0);
    svc = await respawn(svc);
    await expectSameStateAndUsable(svc.client(), before, ids);
    await svc.stop();
  });
});

describe('NATS store (gateway and agent processes)', () => {
  it('an agent-only process restarts from its own snapshot, and after a kill -9 from it and the log after it', async () => {
    const cluster = await startNatsCluster();
    const c = cluster.client();
    const ids = await populate(c);
    const before = await snapshot(c);
    await cluster.restartAgent('SIGTERM');
    // Written at its stop; the gateway (still running) wrote no fold snapshot it could have used.
    expect(cluster.agent.stderr).toMatch(/recovered \d+ VM\(s\) from its snapshot at seq \d+ and 0 log message\(s\)/);
    expect(await snapshot(c)).toEqual(before);
    // More work, then a kill: the snapshot is older than the log.
    const queued = await c.ok<string>('VM.delay', X({ id: ids[0]!, delay: 1 }));
    const behind = await c.ok<string>('VM.start', X({ id: ids[0]!, paused: false }));
    await cluster.restartAgent('SIGKILL');
    expect(cluster.agent.stderr).toMatch(/recovered \d+ VM\(s\) from its snapshot at seq \d+ and [1-9]\d* log message\(s\); 1 with unfinished work/);
    for (const t of [queued, behind]) expect(['Completed', 'Failed']).toContain((await waitTask(c, t, { timeoutMs: 30_000 })).state[0]);
    await waitPower(c, ids[0]!, 'Paused'); // xenopsd's start leaves it paused
    await cluster.stop();
  });

  it('restarting the gateway and the agent (SIGTERM and kill -9) keeps the state', async () => {
    const cluster = await startNatsCluster();
    const ids = await populate(cluster.client());
    const before = await snapshot(cluster.client());

    await cluster.restartGateway('SIGTERM');
    expect(await snapshot(cluster.client())).toEqual(before);
    await cluster.restartAgent('SIGTERM');
    expect(await snapshot(cluster.client())).toEqual(before);
    await cluster.restartGateway('SIGKILL');
    expect(await snapshot(cluster.client())).toEqual(before);
    await cluster.restartAgent('SIGKILL');
    await expectSameStateAndUsable(cluster.client(), before, ids);

    // Both down at once, then back.
    const before2 = await snapshot(cluster.client());
    const [g, a] = [cluster.gateway, cluster.agent];
    expect(await Promise.all([g.stop(), a.stop()])).toEqual([0, 0]);
    cluster.agent = await respawn(a);
    cluster.gateway = await respawn(g);
    expect(await snapshot(cluster.client())).toEqual(before2);
    await cluster.stop();
  });

  // ~20 s on a quiet machine (a pool of one works through every queued task after the restart).
  it('kill -9 of the agent with queued tasks: every task ends after its restart, no VM stuck', { timeout: 60_000 }, async () => {
    const cluster = await startNatsCluster({ agentArgs: ['--pool-size', '1'] });
    const c = cluster.client();
    const { ids, tasks } = await queueStarts(c, 40, 0.25);
    await cluster.agent.kill9();
    const pendingAtKill = (await c.ok<XenopsdTask[]>('Task.list', X())).filter((t) => tasks.includes(t.id) && t.state[0] === 'Pending');
    // Otherwise this test proves nothing: the agent must have been killed with work queued.
    expect(pendingAtKill.length).toBeGreaterThan(0);
    cluster.agent = await respawn(cluster.agent as Xenopsd);
    await expectAllTasksEndAndNoVmStuck(c, ids, tasks);
    await cluster.stop();
  });

  it('kill -9 of the gateway while the agent works: every task completes and the new gateway shows it', async () => {
    const cluster = await startNatsCluster({ agentArgs: ['--pool-size', '1'] });
    const { ids, tasks } = await queueStarts(cluster.client(), 40);
    await cluster.restartGateway('SIGKILL');
    const c = cluster.client();
    const ended = await Promise.all(tasks.map((t) => waitTask(c, t, { timeoutMs: 30_000 })));
    for (const t of ended) expect(t.state[0], `task ${t.id}`).toBe('Completed');
    for (const id of ids) await waitPower(c, id, 'Paused');
    await cluster.stop();
  });

  it('with the agent stopped, the gateway still answers reads from the log', async () => {
    const cluster = await startNatsCluster();
    const c = cluster.client();
    const ids = await populate(c);
    const before = await snapshot(c);
    expect(await cluster.agent.stop()).toBe(0);
    expect(await snapshot(c)).toEqual(before);
    expect((await c.ok<Stat>('VM.stat', X({ id: ids[2] })))[1].power_state).toBe('Running');
    expect(await c.ok('query', X())).toMatchObject({ name: 'xenops' });
    cluster.agent = await respawn(cluster.agent);
    await expectSameStateAndUsable(c, before, ids);
    await cluster.stop();
  });

  // add is synchronous and never waits for a queue (§5.2, §7.2), so it works while the agent is down.
  it('with the agent stopped, VM.add still succeeds and the VM starts once the agent is back', async () => {
    const cluster = await startNatsCluster();
    const c = cluster.client();
    // The gateway never writes a VM's stream (docs/streams.md): an add for a VM no host owns is
    // decided by any agent, here another host's, when the gateway's own host has none.
    const other = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: cluster.prefix, hostId: `${cluster.hostId}-other`, extraArgs: ['--socket', 'off'] });
    expect(await cluster.agent.stop()).toBe(0);
    const id = vmId('agentless');
    try {
      expect(await c.named('VM.add', X({ vm: xenopsdVm(id) }))).toMatchObject({ ok: true, value: id });
    } finally {
      cluster.agent = await respawn(cluster.agent);
    }
    expect((await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })))).state[0]).toBe('Completed');
    // Started on the gateway's host (§7.11), which claimed the VM from the host that added it.
    expect(cluster.agent.stderr).not.toMatch(/failed/);
    await other.stop();
  });
});
