import { InMemoryLeases } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import { ClusterLease } from './cluster-lease.js';
import { PeriodicJob } from './periodic-job.js';

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('cluster leases (issue 14: cluster-wide jobs run once)', () => {
  it('of two gateways one holds the lease and runs the job; stopped, it hands the lease on and the other runs it', async () => {
    let now = 1_000;
    const leases = new InMemoryLeases(10_000, () => now);
    const lines: string[] = [];
    const a = new ClusterLease('task-reaper', leases, 'h1/a', (l) => lines.push(l), () => {}, 60_000);
    const b = new ClusterLease('task-reaper', leases, 'h2/b', (l) => lines.push(l), () => {}, 60_000);
    a.start();
    await settle();
    b.start();
    await settle();
    expect([a.isHeld, b.isHeld]).toEqual([true, false]);
    const runs: string[] = [];
    const jobA = new PeriodicJob('reaper a', async () => runs.push('a'), 60_000, undefined, () => a.isHeld);
    const jobB = new PeriodicJob('reaper b', async () => runs.push('b'), 60_000, undefined, () => b.isHeld);
    jobA.tick();
    jobB.tick();
    await settle();
    expect(runs).toEqual(['a']);
    await a.stop();
    expect(await leases.holder('task-reaper')).toBeUndefined();
    expect(lines).toContain('lease task-reaper: released by h1/a');
    now += 1;
    (b as unknown as { tick(): void }).tick();
    await settle();
    expect(b.isHeld).toBe(true);
    jobB.tick();
    await settle();
    expect(runs).toEqual(['a', 'b']);
    await b.stop();
  });

  it('a holder that stops renewing loses the lease once it lapses; the next to ask takes it', async () => {
    let now = 0;
    const leases = new InMemoryLeases(10_000, () => now);
    expect(await leases.acquire('retention', 'dead')).toBe(true);
    now = 9_999;
    expect(await leases.acquire('retention', 'alive')).toBe(false);
    now = 10_001;
    expect(await leases.acquire('retention', 'alive')).toBe(true);
    expect(await leases.holder('retention')).toBe('alive');
  });
});
