/**
 * Retention (issue 5): `--retention-days D` deletes log events older than D days once a fold
 * snapshot covers them; the service then starts, answers, verifies and restarts from that
 * snapshot. Without the flag the log keeps everything (every other suite runs that way).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest, X, waitTask } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, spawnXenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

describe('retention on the embedded store', () => {
  it('--retention-days 0 cuts the log at a covering snapshot; state, verify and restarts hold', async () => {
    // History first, with the default (keep everything).
    const first = await spawnXenopsd({ mode: 'embedded' });
    let c = first.client();
    const ids = [vmId('ret'), vmId('ret'), vmId('ret')];
    for (const id of ids) {
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })));
    }
    const listBefore = await c.ok<unknown[]>('VM.list', X());
    const headBefore = await c.ok<number>('UPDATES.last_id', X());
    expect(await first.stop()).toBe(0);

    // With retention 0 days everything but what the snapshot covers may go at start.
    const cut = await spawnXenopsd({ mode: 'embedded', dataDir: first.dataDir, extraArgs: ['--retention-days', '0'] });
    c = cut.client();
    await expect.poll(async () => (await httpRequest({ url: cut.url }, { method: 'GET', path: '/log?since=0&limit=1' })).body, { timeout: 10_000 }).toMatch(/"seq":\d+/);
    const firstLogged = JSON.parse((await httpRequest({ url: cut.url }, { method: 'GET', path: '/log?since=0&limit=1' })).body.split('\n')[0]!) as { seq: number };
    expect(firstLogged.seq).toBe(headBefore); // only the newest message is left
    expect(await c.ok<unknown[]>('VM.list', X())).toEqual(listBefore);
    const old = await c.fail('VM.stat', X({ id: ids[0], as_of: 2 }));
    expect(old).toEqual(['Internal_error', `as_of 2 is older than the retained history (the log starts at seq ${headBefore})`]);
    // The truncated VMs still take operations, and the whole log still verifies.
    const shutdown = await waitTask(c, await c.ok<string>('VM.shutdown', X({ id: ids[0] })));
    expect(shutdown.state[0]).toBe('Completed');
    const verify = JSON.parse((await httpRequest({ url: cut.url }, { method: 'GET', path: '/verify' })).body) as { ok: boolean; differences: string[] };
    expect(verify).toMatchObject({ ok: true, differences: [] });
    const listAfter = await c.ok<unknown[]>('VM.list', X());
    expect(await cut.stop()).toBe(0);

    // A restart on the truncated log comes back from the snapshot with nothing lost.
    const again = await spawnXenopsd({ mode: 'embedded', dataDir: first.dataDir });
    expect(await again.client().ok<unknown[]>('VM.list', X())).toEqual(listAfter);
    expect(await again.stop()).toBe(0);
  }, 60_000);
});
