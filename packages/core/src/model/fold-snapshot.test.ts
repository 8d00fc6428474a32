import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEmbeddedStores } from '../store/embedded/embedded-stores.js';
import type { LogEvent } from '../events/event.js';
import { decodeFoldSnapshot, encodeFoldSnapshot, saveFoldSnapshot, sharedFoldSnapshotLoader, type FoldSnapshot } from './fold-snapshot.js';
import { emptyVm, evolveVm } from './vm-aggregate.js';

describe('sharedFoldSnapshotLoader', () => {
  it('fetches and decodes once for its consumers, then loads afresh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xenops-fold-'));
    const stores = await openEmbeddedStores({ dataDir: dir });
    try {
      const snap: FoldSnapshot = { seq: 7, vms: [emptyVm('a')], tasks: [], domids: [], hosts: [], observers: {} };
      await saveFoldSnapshot(stores.snapshots, snap);
      let gets = 0;
      const get = stores.snapshots.get.bind(stores.snapshots);
      stores.snapshots.get = (key) => {
        gets++;
        return get(key);
      };
      const load = sharedFoldSnapshotLoader(stores.snapshots, 2);
      const [first, second] = await Promise.all([load(), load()]);
      expect(gets).toBe(1);
      expect(second).toBe(first);
      expect(first?.seq).toBe(7);
      expect(first?.vms.map((v) => v.id)).toEqual(['a']);
      // Both consumers took it: a later call reads the store again (and nothing is held).
      const third = await load();
      expect(gets).toBe(2);
      expect(third).not.toBe(first);
      expect(third?.seq).toBe(7);
    } finally {
      await stores.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('decodeFoldSnapshot', () => {
  it('gives VMs without devices the shared empty tables, and keeps the devices of the others', () => {
    const withDisk = evolveVm(emptyVm('b'), {
      seq: 1,
      audit: { dbg: 't', timeMs: 0, host: 'h', actor: 'a' },
      body: { type: 'DeviceAdded', vmId: 'b', device: { kind: 'vbd', config: { id: ['b', 'xvda'] } } },
    } as unknown as LogEvent);
    const snap: FoldSnapshot = { seq: 1, vms: [emptyVm('a'), withDisk], tasks: [], domids: [], hosts: [], observers: {} };
    const decoded = decodeFoldSnapshot(encodeFoldSnapshot(snap))!;
    const [a, b] = decoded.vms;
    // The clone made new Maps; an empty set is swapped for the one every fold shares.
    expect(a!.devices).toBe(emptyVm('x').devices);
    expect([...b!.devices.vbd.keys()]).toEqual(['xvda']);
    expect(b!.devices).not.toBe(emptyVm('x').devices);
  });
});
