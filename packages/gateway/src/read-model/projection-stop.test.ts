/**
 * A message the read model cannot fold (a bug in a fold function, not a damaged message: those
 * are quarantined) stops the fold where it is: its seq does not advance past the last message
 * folded entirely, and a wait for a later seq fails at once with a clear error instead of
 * answering from a read model that skipped a write. A wait that takes too long fails too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBatch, Streams, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Projection, ReadModelBehindError } from './projection.js';

const failing = vi.hoisted(() => ({ seq: 0 }));

vi.mock('@xenops/core', async (importOriginal) => {
  const real = await importOriginal<typeof import('@xenops/core')>();
  return {
    ...real,
    foldStoredMessageSteps: (state: Parameters<typeof real.foldStoredMessageSteps>[0], m: Parameters<typeof real.foldStoredMessageSteps>[1]) => {
      if (m.seq === failing.seq) throw new Error('a bug in a fold function');
      return real.foldStoredMessageSteps(state, m);
    },
  };
});

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };

async function appendTasks(stores: Stores, count: number): Promise<number> {
  let seq = 0;
  for (let i = 0; i < count; i++) {
    const body = { type: 'TaskCreated', vmId: `vm${i}`, operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 } as const;
    seq = await stores.log.append({ stream: Streams.vm(`vm${i}`), data: encodeBatch([{ audit, body }]) });
  }
  return seq;
}

describe('Projection: a fold failure and a slow fold', () => {
  let dir: string;
  let stores: Stores;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-projection-stop-'));
    stores = await openEmbeddedStores({ dataDir: dir });
  });
  afterEach(async () => {
    failing.seq = 0;
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stays at the last message it folded entirely (and starts, unhealthy); later waits fail at once with the reason', async () => {
    await appendTasks(stores, 10);
    failing.seq = 6;
    const lines: string[] = [];
    const projection = new Projection(stores.log, { logger: (l) => lines.push(l) });
    // It starts (unhealthy: /healthz says so), at the last message it folded entirely.
    await projection.start();
    expect(projection.seq).toBe(5);
    expect(projection.healthy).toBe(false);
    expect([...projection.tasks.values()].map((t) => t.vmId).sort()).toEqual(['vm0', 'vm1', 'vm2', 'vm3', 'vm4']);
    // Later messages are not folded over the hole either.
    await appendTasks(stores, 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(projection.seq).toBe(5);
    const refused = projection.waitFor(7);
    await expect(refused).rejects.toBeInstanceOf(ReadModelBehindError);
    await expect(refused).rejects.toThrow(/the read model stopped at seq 5: cannot fold seq 6 \(vm\/vm5\): a bug in a fold function/);
    await expect(projection.waitFor(5)).resolves.toBeUndefined();
    expect(lines.join('\n')).toMatch(/cannot fold seq 6 \(vm\/vm5\): a bug in a fold function; the read model stays at seq 5/);
    await projection.close();
  });

  it('bounds a wait for a seq the log has not reached', async () => {
    const head = await appendTasks(stores, 3);
    const projection = new Projection(stores.log, { waitTimeoutMs: 100 });
    await projection.start();
    await expect(projection.waitFor(head + 1)).rejects.toThrow(`the read model did not reach seq ${head + 1} within 0.1 s (it is at seq ${head})`);
    // A write that arrives in time is still waited for.
    const waiting = projection.waitFor(head + 1);
    await appendTasks(stores, 1);
    await expect(waiting).resolves.toBeUndefined();
    await projection.close();
  });
});
