import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEmbeddedStores } from '../store/embedded/embedded-stores.js';
import { saveFoldSnapshot, sharedFoldSnapshotLoader, type FoldSnapshot } from './fold-snapshot.js';
import { emptyVm } from './vm-aggregate.js';

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
