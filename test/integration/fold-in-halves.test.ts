/**
 * A start's fold in two halves (packages/gateway/src/read-model/fold-partition.ts) must build
 * exactly the read model the fold in order builds: the same VMs, tasks, domids, hosts, damage and
 * UPDATES set, over a log a real service wrote (devices, tasks destroyed and not, removed VMs,
 * barriers, refreshes, refused tasks, a damaged VM stream). A log whose halves depend on each
 * other is folded again in order.
 */
import { encodeBatch, Streams, type FoldSnapshot, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { halfOfVm } from '../../packages/gateway/src/read-model/fold-partition.js';
import { Projection } from '../../packages/gateway/src/read-model/projection.js';
import { UpdatesService } from '../../packages/gateway/src/updates/updates-service.js';
import { damageEmbeddedLog } from '../support/damage.js';
import { waitTask, X, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, spawnXenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

interface Folded {
  readonly snapshot: FoldSnapshot;
  readonly updates: unknown;
  readonly log: string[];
}

/** A read model started over the whole log (no snapshot), folding in halves from `from` messages. */
async function fold(stores: Stores, from: number): Promise<Folded> {
  const log: string[] = [];
  const projection = new Projection(stores.log, { foldInHalvesFrom: from, logger: (l) => log.push(l) });
  const updates = new UpdatesService(projection, stores.log, { hostId: 'h1' });
  await projection.start();
  const snapshot = projection.snapshot();
  const result = { snapshot, updates: updates.set.get(0), log };
  await projection.close();
  return result;
}

/** The snapshot with its lists in a fixed order (the halves add VMs and tasks in another order). */
function normal(s: FoldSnapshot): unknown {
  const byKey = <T>(xs: readonly T[], key: (x: T) => string) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    ...s,
    vms: byKey(s.vms, (v) => v.id),
    tasks: byKey(s.tasks, (t) => t.id.padStart(12, '0')),
    domids: byKey(s.domids, ([h]) => h),
    hosts: byKey(s.hosts, ([h]) => h),
  };
}

async function run(c: RpcClient, method: string, args: Record<string, unknown>): Promise<string> {
  const task = await c.ok<string>(method, X(args));
  await waitTask(c, task);
  return task;
}

describe('a start folding the log in two halves', () => {
  it('builds the read model the fold in order builds, and folds in order when the halves depend on each other', { timeout: 120_000 }, async () => {
    const x = await spawnXenopsd({ mode: 'embedded' });
    const c = x.client();
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const id = vmId(`halves${i}`);
      ids.push(id);
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      if (i % 2 === 0) await c.ok('VBD.add', X({ vbd: { id: [id, 'xvda'], backend: ['VDI', `sr/${id}`] } }));
      if (i % 3 === 0) await c.ok('VIF.add', X({ vif: { id: [id, 'eth0'], position: 0 } }));
      if (i % 4 === 3) continue; // registered, never started
      const start = await run(c, 'VM.start', { id, paused: false });
      if (i % 2 === 1) await c.ok('Task.destroy', X({ id: start }));
      if (i % 5 === 0) await run(c, 'VM.pause', { id });
      if (i % 3 === 1) {
        await run(c, 'VM.shutdown', { id });
        if (i % 6 === 1) await c.ok('VM.remove', X({ id }));
      }
    }
    await c.ok('UPDATES.inject_barrier', X({ vm_id: ids[0], id: 7 }));
    await c.ok('UPDATES.refresh_vm', X({ id: ids[2] }));
    await c.ok('UPDATES.refresh_vm', X({ id: ids[5] }));
    // Refused before any agent queued them (no such host): tasks of the `task/unrouted` stream, one destroyed.
    const migrate = (id: string) =>
      c.ok<string>('VM.migrate', X({ id, vdi_map: {}, vif_map: {}, pci_map: {}, xenops_url: 'xenops://elsewhere', compress: false, verify_dest: false, localhost_migration: false }));
    const refused = await migrate(ids[4]!);
    await waitTask(c, refused);
    await waitTask(c, await migrate(ids[7]!));
    await c.ok('Task.destroy', X({ id: refused }));
    const dataDir = x.dataDir;
    await x.stop();
    // A damaged message in a VM's stream: that VM is quarantined in whichever half it is.
    damageEmbeddedLog(dataDir, (ms) => ms.filter((m) => m.stream === Streams.vm(ids[6]!)).slice(-1));

    let stores = await openEmbeddedStores({ dataDir });
    try {
      const inOrder = await fold(stores, Infinity);
      const inHalves = await fold(stores, 1);
      expect(inHalves.log.join('\n')).toMatch(/folded \d+ message\(s\) in two halves/);
      expect(inOrder.snapshot.vms.length).toBeGreaterThan(15);
      expect(inOrder.snapshot.tasks.length).toBeGreaterThan(10);
      expect(inOrder.snapshot.damage?.length).toBe(1);
      // Both halves had work: VMs of each are in the result.
      expect(new Set(inOrder.snapshot.vms.map((v) => halfOfVm(v.id)))).toEqual(new Set([0, 1]));
      expect(normal(inHalves.snapshot)).toStrictEqual(normal(inOrder.snapshot));
      expect(inHalves.updates).toEqual(inOrder.updates);

      // A task created in one half's VM stream, then named by an event of the other half's.
      const [a, b] = [ids.find((id) => halfOfVm(id) === 0)!, ids.find((id) => halfOfVm(id) === 1)!];
      const audit = { dbg: 't', timeMs: 0, host: 'h1', actor: 'test' };
      const created = await stores.log.append({
        stream: Streams.vm(a),
        data: encodeBatch([{ audit, body: { type: 'TaskCreated', vmId: a, operation: { kind: 'VM.pause' }, host: 'h1', ctimeMs: 0 } }]),
      });
      await stores.log.append({ stream: Streams.vm(b), data: encodeBatch([{ audit, body: { type: 'TaskDestroyed', taskId: String(created) } }]) });
      await stores.close();
      stores = await openEmbeddedStores({ dataDir });
      const crossOrder = await fold(stores, Infinity);
      const crossHalves = await fold(stores, 1);
      expect(crossHalves.log.join('\n')).toMatch(/the fold in two halves did not hold \(a half met events of a task it holds no record of \(the other half's, or one never created\)\); folding seqs 1\.\.\d+ in order/);
      expect(crossOrder.snapshot.tasks.some((t) => t.id === String(created))).toBe(false);
      expect(normal(crossHalves.snapshot)).toStrictEqual(normal(crossOrder.snapshot));
      expect(crossHalves.updates).toEqual(crossOrder.updates);
    } finally {
      await stores.close();
    }
  });
});
