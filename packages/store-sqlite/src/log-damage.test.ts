/** The fold's damage handling on the embedded store, with the damage made in the SQLite file itself. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { findDamage, foldBase, replayLog, saveFoldSnapshot, Streams } from '@xenops/core';
import { batch, damagedLog, foldMessages as fold, GARBAGE } from '@xenops/core/testing';
import { describe, expect, it } from 'vitest';
import { openEmbeddedStores } from './embedded-stores.js';

describe('on the embedded store, damaged on disk', () => {
  /** A store holding `damagedLog()`'s good messages, with the damaged rows overwritten in the file afterwards. */
  async function damagedStore() {
    const dir = await mkdtemp(join(tmpdir(), 'xenops-damage-'));
    const log = damagedLog();
    const stores = await openEmbeddedStores({ dataDir: dir });
    // Appended intact (a later version may refuse to append bytes it cannot decode), then damaged.
    for (const m of log) await stores.log.append({ stream: m.stream, data: m.data === GARBAGE ? batch({ type: 'VmRefreshed', vmId: 'x' }) : m.data });
    await stores.close();
    const db = new Database(join(dir, 'xenops.db'));
    const damage = db.prepare('UPDATE events SET data = ? WHERE seq = ?');
    for (const m of log) if (m.data === GARBAGE) damage.run(Buffer.from(GARBAGE), m.seq);
    db.close();
    return { dir, stores: await openEmbeddedStores({ dataDir: dir }) };
  }

  it('replayLog reports the damage and folds the rest; findDamage finds exactly the damaged seqs', async () => {
    const { dir, stores } = await damagedStore();
    try {
      const replayed = await replayLog(stores.log);
      expect(replayed.damage).toEqual(fold(damagedLog()).damage);
      expect(replayed.seq).toBe(9);
      expect(replayed.vms.get('a')?.quarantine?.seq).toBe(3);
      expect(replayed.vms.get('b')?.queue).toHaveLength(1);
      const found: number[] = [];
      for await (const d of findDamage(stores.log, 0, 8)) found.push(d.seq);
      expect(found).toEqual([3, 7, 8]);
    } finally {
      await stores.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('once retention truncated the damage away, the covering snapshot still carries it and the quarantine', async () => {
    const { dir, stores } = await damagedStore();
    try {
      const before = await replayLog(stores.log);
      await saveFoldSnapshot(stores.snapshots, {
        seq: before.seq,
        vms: [...before.vms.values()],
        tasks: [...before.tasks.values()],
        domids: [],
        hosts: [],
        observers: {},
        damage: before.damage,
      });
      await stores.log.append({ stream: Streams.vm('b'), data: batch({ type: 'VmRefreshed', vmId: 'b' }) });
      await stores.log.truncateBefore(10);
      const base = await foldBase(stores.log, stores.snapshots);
      expect(base.damage.map((d) => d.seq)).toEqual([3, 7, 8, 9]);
      const after = await replayLog(stores.log, undefined, stores.snapshots);
      expect(after.damage).toEqual(before.damage);
      expect(after.vms.get('a')?.quarantine?.seq).toBe(3);
    } finally {
      await stores.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
