/**
 * A full disk (issue 11 item 7), with the real binary on a small tmpfs as its data dir: while a
 * client keeps writing, a filler file takes the last byte. Writes then fail with a typed
 * `Internal_error` that says the disk is full, reads keep working and `/healthz` is 503 with the
 * reason; once the filler is gone, writes work again without a restart, and every write that was
 * acknowledged (before, during and after) is there, in the read model, in a replay of the log
 * (`/verify`) and after a restart.
 */
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest, X, type RpcClient } from '../support/rpc.js';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.js';
import { xenopsdVm } from '../support/vms.js';
import { cleanupAll, respawn, spawnXenopsd } from '../support/xenopsd.js';

let fs: Tmpfs | undefined;
afterAll(async () => {
  await fs?.unmount();
  await cleanupAll();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Health {
  status: number;
  body: { status: string; reason?: string; seq?: number };
}

async function health(url: string): Promise<Health> {
  const r = await httpRequest({ url }, { method: 'GET', path: '/healthz' });
  return { status: r.status, body: JSON.parse(r.body) as Health['body'] };
}

async function verify(url: string): Promise<{ ok: boolean; differences: string[]; seq: number }> {
  const r = await httpRequest({ url }, { method: 'GET', path: '/verify' });
  expect(r.status).toBe(200);
  return JSON.parse(r.body) as { ok: boolean; differences: string[]; seq: number };
}

async function vmIds(c: RpcClient): Promise<string[]> {
  return (await c.ok<[{ id: string }, unknown][]>('VM.list', X())).map(([v]) => v.id).sort();
}

describe('a full disk under the embedded store', () => {
  it('refuses writes with a typed error, loses nothing acknowledged, and recovers when space returns', async () => {
    fs = await mountTmpfs(24 * 1024 * 1024, 'xfull');
    let x = await spawnXenopsd({ mode: 'embedded', dataDir: fs.dir });
    const url = x.url!;
    const c = x.client();

    // A writer that never stops on its own: each call adds a VM, every third one also starts it.
    const acknowledged = new Set<string>();
    const failures: unknown[] = [];
    let writing = true;
    let n = 0;
    const writer = (async () => {
      while (writing && !x.proc.killed) {
        const id = `vm-${n++}`;
        const o = await c.named('VM.add', X({ vm: xenopsdVm(id, { xsdata: { pad: 'p'.repeat(2000) } }) }));
        if (o.ok) {
          acknowledged.add(id);
          if (n % 3 === 0) await c.named('VM.start', X({ id, paused: false }));
        } else failures.push(o.error);
        await sleep(5);
      }
    })();
    // A transport failure (the service died) ends the writer; the assertions below then fail.
    writer.catch(() => {});

    const warm = Date.now() + 15_000;
    while (acknowledged.size < 10 && Date.now() < warm) await sleep(50);
    expect(acknowledged.size).toBeGreaterThanOrEqual(10);
    fs.fill();
    // The writer now runs into the full disk.
    const deadline = Date.now() + 15_000;
    while (failures.length < 3 && Date.now() < deadline) await sleep(50);
    expect(failures.length, 'writes failed once the disk was full').toBeGreaterThanOrEqual(3);
    for (const f of failures) {
      expect(f).toEqual(['Internal_error', expect.stringMatching(/the embedded store cannot write: disk full \(SQLITE_FULL\) on .*xenops\.db/)]);
    }

    // The disk stays full for a while: the writer (adds and starts) keeps running into it.
    await sleep(1500);

    // Reads keep working, health says why writes cannot succeed.
    const during = await vmIds(c);
    for (const id of acknowledged) expect(during).toContain(id);
    const h = await health(url);
    expect(h.status).toBe(503);
    expect(h.body.status).toBe('unavailable');
    expect(h.body.reason).toMatch(/disk full \(SQLITE_FULL\)/);
    const direct = await c.named('VM.add', X({ vm: xenopsdVm('while-full') }));
    expect(direct).toMatchObject({ ok: false, error: ['Internal_error', expect.stringContaining('disk full (SQLITE_FULL)')] });

    // A backup needs room for its copy: refused with the reason, nothing left behind.
    const backup = await httpRequest({ url }, { method: 'GET', path: '/backup' });
    expect(backup.status).toBe(503);
    expect(JSON.parse(backup.body).error).toMatch(/^backup failed: cannot copy the embedded store into .*: the data dir .* has no room for the copy \(SQLITE_FULL\)$/);
    expect(readdirSync(fs.dir).filter((f) => f.includes('backup'))).toEqual([]);

    // Space comes back: no restart, writes succeed again and health recovers by itself.
    fs.free();
    const failuresAtFree = failures.length;
    const okDeadline = Date.now() + 10_000;
    let healthy = await health(url);
    while (healthy.status !== 200 && Date.now() < okDeadline) {
      await sleep(200);
      healthy = await health(url);
    }
    expect(healthy.body.status).toBe('ok');
    const ackAtFree = acknowledged.size;
    const more = Date.now() + 10_000;
    while (acknowledged.size < ackAtFree + 10 && Date.now() < more) await sleep(50);
    writing = false;
    await writer;
    expect(acknowledged.size, 'writes resumed after the space came back').toBeGreaterThanOrEqual(ackAtFree + 10);
    await c.ok('VM.add', X({ vm: xenopsdVm('after-full') }));
    acknowledged.add('after-full');
    // A few calls may have failed in the instant between the free and the first retry, none after.
    expect(failures.length - failuresAtFree).toBeLessThanOrEqual(2);

    // Tasks caught by the full disk end (Completed or Failed), none stays Pending, and a VM whose
    // start may have failed still takes new work.
    const tasksDeadline = Date.now() + 20_000;
    let pending: unknown[] = [];
    do {
      pending = (await c.ok<{ id: string; state: [string] }[]>('Task.list', X())).filter((t) => t.state[0] === 'Pending');
      if (pending.length > 0) await sleep(200);
    } while (pending.length > 0 && Date.now() < tasksDeadline);
    expect(pending, 'tasks still Pending after the disk recovered').toEqual([]);
    const [first] = [...acknowledged];
    const shutdown = await c.ok<string>('VM.shutdown', X({ id: first, delay: 0 }));
    const restart = await c.ok<string>('VM.start', X({ id: first, paused: false }));
    for (const t of [shutdown, restart]) {
      const until = Date.now() + 10_000;
      let state = 'Pending';
      while (state === 'Pending' && Date.now() < until) {
        state = (await c.ok<{ state: [string] }>('Task.stat', X({ id: t }))).state[0];
        if (state === 'Pending') await sleep(50);
      }
      expect(state).not.toBe('Pending');
    }

    // Nothing acknowledged is lost: in the read model, in a replay of the log, and after a restart.
    const ids = await vmIds(c);
    for (const id of acknowledged) expect(ids).toContain(id);
    const v1 = await verify(url);
    expect(v1.differences).toEqual([]);
    expect(v1.ok).toBe(true);

    expect(await x.stop()).toBe(0);
    x = await respawn(x);
    const c2 = x.client();
    const after = await vmIds(c2);
    for (const id of acknowledged) expect(after).toContain(id);
    expect(after).toEqual(ids);
    const v2 = await verify(x.url!);
    expect(v2.ok).toBe(true);
    expect(v2.seq).toBe(v1.seq);
    console.log(
      `disk-full: ${acknowledged.size} acknowledged writes, ${failures.length} refused while full, ` +
        `all present after recovery and restart (verify ok at seq ${v2.seq})`,
    );
    await x.stop();
  });
});
