/**
 * The embedded store's write path when the storage fails (issue 11 item 7), below the service: a
 * group commit whose COMMIT fails rejects every append of the group and stores none of them; a
 * full disk (a real tmpfs) is reported as such, health learns it and recovers by itself once space
 * returns; after an I/O error the outcome of the commit is unknown, so the log takes no more writes
 * until it is reopened, and the reopened log holds exactly what was acknowledged.
 */
import { StoreWriteError, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.js';
import { makeTempDir, stopAll } from '../support/xenopsd.js';

const mounts: Tmpfs[] = [];
afterAll(async () => {
  for (const m of mounts) await m.unmount();
  await stopAll();
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function contents(stores: Stores): Promise<string[]> {
  const out: string[] = [];
  for await (const m of stores.log.read(0)) out.push(dec(m.data).slice(0, 40));
  return out;
}

describe('embedded store write failures', () => {
  it('a full disk rejects the whole group commit, health says so, and both recover when space returns', async () => {
    const fs = await mountTmpfs(4 * 1024 * 1024, 'xwfull');
    mounts.push(fs);
    let stores = await openEmbeddedStores({ dataDir: fs.dir });
    const acked: string[] = [];
    for (let i = 0; i < 10; i++) {
      await stores.log.append({ stream: `s/${i % 3}`, data: enc(`before-${i}`) });
      acked.push(`before-${i}`);
    }
    expect(await stores.log.writeProblem!()).toBeUndefined();
    fs.fill();

    // One group: twenty appends issued in the same macrotask share one COMMIT, which cannot be written.
    const pad = 'x'.repeat(16 * 1024);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => stores.log.append({ stream: `s/${i % 3}`, data: enc(`full-${i} ${pad}`) })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill('rejected'));
    for (const r of results) {
      const e = (r as PromiseRejectedResult).reason as StoreWriteError;
      expect(e).toBeInstanceOf(StoreWriteError);
      expect(e).toMatchObject({ name: 'StoreWriteError', code: 'SQLITE_FULL', failure: 'disk-full' });
      expect(e.message).toContain(`the embedded store cannot write: disk full (SQLITE_FULL) on ${fs.dir}/xenops.db; the group of 20 appends was not stored`);
      expect((e.cause as { code?: string }).code).toBe('SQLITE_FULL');
    }
    // Reads still work, and nothing of the failed group is visible.
    expect(await stores.log.head()).toBe(10);
    expect(await contents(stores)).toEqual(acked);
    expect(await stores.log.writeProblem!()).toMatch(/disk full \(SQLITE_FULL\)/);
    // Snapshots are refused the same way.
    await expect(stores.snapshots.put('fold', { seq: 10, data: enc(pad.repeat(8)) })).rejects.toMatchObject({ code: 'SQLITE_FULL', failure: 'disk-full' });

    fs.free();
    // Health probes with a small real write (at most once a second): it clears without any append.
    const deadline = Date.now() + 5000;
    while ((await stores.log.writeProblem!()) !== undefined && Date.now() < deadline) await sleep(100);
    expect(await stores.log.writeProblem!()).toBeUndefined();
    const seqs = await Promise.all(Array.from({ length: 5 }, (_, i) => stores.log.append({ stream: 's/0', data: enc(`after-${i}`) })));
    expect(seqs).toEqual([11, 12, 13, 14, 15]);
    acked.push(...Array.from({ length: 5 }, (_, i) => `after-${i}`));
    expect(await contents(stores)).toEqual(acked);

    // The WAL with the failed frames in it replays to exactly the acknowledged appends.
    await stores.close();
    stores = await openEmbeddedStores({ dataDir: fs.dir });
    expect(await contents(stores)).toEqual(acked);
    expect(await stores.log.append({ stream: 's/1', data: enc('reopened') })).toBe(16);
    await stores.close();
  });

  it('after an I/O error at COMMIT the log rejects the group and every later write until reopened', async () => {
    const dir = await makeTempDir('xwioerr');
    let stores = await openEmbeddedStores({ dataDir: dir });
    await stores.log.append({ stream: 's', data: enc('kept') });
    // Fault injection at the one place SQLite reports it: the COMMIT of a group (an fsync that failed).
    const log = stores.log as unknown as { commit: { run(): unknown } };
    const realCommit = log.commit;
    log.commit = {
      run() {
        throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' });
      },
    };
    const group = await Promise.allSettled([1, 2, 3].map((i) => stores.log.append({ stream: 's', data: enc(`lost-${i}`) })));
    expect(group.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const err = (group[0] as PromiseRejectedResult).reason as StoreWriteError;
    expect(err).toMatchObject({ code: 'SQLITE_IOERR_FSYNC', failure: 'io-error' });
    expect(err.message).toMatch(/I\/O error \(SQLITE_IOERR_FSYNC\).*the store accepts no more writes: check the disk, then restart xenopsd/);

    // Even once the disk behaves again, this log refuses: it cannot know what the failed commit left.
    log.commit = realCommit;
    await expect(stores.log.append({ stream: 's', data: enc('refused') })).rejects.toBe(err);
    expect(await stores.log.writeProblem!()).toBe(err.message);
    expect(await contents(stores)).toEqual(['kept']);
    await stores.close();

    stores = await openEmbeddedStores({ dataDir: dir });
    expect(await contents(stores)).toEqual(['kept']);
    expect(await stores.log.append({ stream: 's', data: enc('after restart') })).toBe(2);
    await stores.close();
  });
});
