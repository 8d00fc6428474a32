/**
 * Cancellation (API.md §7.1, §7.3, §8.3): queued tasks, running waits, finished tasks,
 * `DEBUG.trigger "set-cancel-trigger"`, and the point of no return of a suspend. Both stores,
 * xenopsd and seed dialects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S, X, type RpcClient, type SeedTask, type XenopsdTask } from '../support/rpc.js';
import { addStarted, completed, power, SEED, sleep, startService, waitTaskWhere, waitVm, XENOPSD } from '../support/ops.js';
import { cleanupAll } from '../support/xenopsd.js';

afterAll(cleanupAll);

const failed = (error: unknown) => ({ state: 'Failed', error });
const xstat = (c: RpcClient, id: string) => c.ok<XenopsdTask>('Task.stat', X({ id }));

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  let c: RpcClient;
  beforeAll(async () => {
    c = (await startService(store)).client();
  });

  it('cancelling a running VM.delay ends it at once with ["Cancelled", id]', async () => {
    const id = await XENOPSD.add(c);
    const t = await c.ok<string>('VM.delay', X({ id, delay: 5 }));
    await waitTaskWhere(c, t, () => true, 'visible');
    await sleep(300);
    expect((await xstat(c, t)).state).toEqual(['Pending', 0]);
    const t0 = Date.now();
    expect(await c.ok('Task.cancel', X({ id: t }))).toBeNull();
    expect(await XENOPSD.wait(c, t, 3_000)).toEqual(failed(['Cancelled', t]));
    expect(Date.now() - t0).toBeLessThan(1_500);
    const task = await xstat(c, t);
    // The atom's start and its wait are two cancellation points.
    expect(task.debug_info).toEqual({ cancel_points_seen: '2' });
    expect(task.cancellable).toBe(true);
    // The VM's queue moves on.
    expect(await XENOPSD.run(c, id, { op: 'start' })).toEqual(completed);
  });

  it('Task.cancel of a queued task fails it immediately and removes it from the queue (both dialects)', async () => {
    for (const d of [XENOPSD, SEED]) {
      const id = await d.add(c);
      const delay = await c.ok<string>('VM.delay', X({ id, delay: 1 }));
      const start = await d.submit(c, id, { op: 'start' });
      const t0 = Date.now();
      expect(await c.ok('Task.cancel', d.args({ id: start }))).toBeNull();
      // Already failed when the next read arrives; the delay ahead of it is still running.
      if (d.name === 'seed') {
        expect(await c.ok<SeedTask>('Task.stat', S({ id: start }))).toEqual({ id: start, result: ['Failed', JSON.stringify(['Cancelled', start])], subtasks: {} });
      } else {
        expect((await xstat(c, start)).state).toEqual(['Failed', ['Cancelled', start]]);
      }
      expect(Date.now() - t0).toBeLessThan(800);
      expect((await xstat(c, delay)).state[0]).toBe('Pending');
      expect(await XENOPSD.wait(c, delay)).toEqual(completed);
      // The cancelled start never ran.
      expect((await xstat(c, start)).debug_info).toEqual({ cancel_points_seen: '0' });
      await sleep(100);
      expect(await power(c, id)).toBe('Halted');
    }
  });

  it('Task.cancel of a finished task is a no-op', async () => {
    const id = await XENOPSD.add(c);
    const t = await c.ok<string>('VM.start', X({ id, paused: false }));
    await XENOPSD.wait(c, t);
    const before = await xstat(c, t);
    expect(await c.ok('Task.cancel', X({ id: t }))).toBeNull();
    expect(await c.ok('Task.cancel', S({ id: t }))).toBeNull();
    expect(await xstat(c, t)).toEqual(before);
    expect(await power(c, id)).toBe('Paused');
  });

  it('set-cancel-trigger [dbg, 2] cancels the next VM.start with that dbg at its 2nd point; the VM ends Halted with no domain', async () => {
    for (const d of [XENOPSD, SEED]) {
      const dbg = `trig-${d.name}-${Date.now()}`;
      const id = await d.add(c);
      expect(await c.ok('DEBUG.trigger', X({ cmd: 'set-cancel-trigger', args: [dbg, '2'] }))).toBeNull();
      const t = await d.submit(c, id, { op: 'start' }, dbg);
      expect(await d.wait(c, t)).toEqual(failed(['Cancelled', t]));
      expect((await xstat(c, t)).debug_info).toEqual({ cancel_points_seen: '2' });
      // The state check tears the half-created domain down (§7.3).
      await waitVm(c, id, (s) => s?.[1].power_state === 'Halted' && s[1].domids.length === 0, 'Halted without a domain');
      // One-shot: the next task with the same dbg runs to the end.
      expect(await d.run(c, id, { op: 'start' }, dbg)).toEqual(completed);
      expect(await power(c, id)).toBe(d.startEnds);
    }
  });

  it('set-cancel-trigger is used up by the first matching task even if it ends before point n', async () => {
    const dbg = `trig-short-${Date.now()}`;
    const id = await XENOPSD.add(c);
    await c.ok('DEBUG.trigger', X({ cmd: 'set-cancel-trigger', args: [dbg, '3'] }));
    // A hard shutdown of a Halted VM has no atoms: it ends before point 3 and uses the trigger up.
    expect(await XENOPSD.run(c, id, { op: 'shutdown' }, dbg)).toEqual(completed);
    expect(await XENOPSD.run(c, id, { op: 'start' }, dbg)).toEqual(completed);
    // A task with another dbg is never affected.
    const other = await XENOPSD.add(c);
    await c.ok('DEBUG.trigger', X({ cmd: 'set-cancel-trigger', args: [`${dbg}-x`, '1'] }));
    expect(await XENOPSD.run(c, other, { op: 'start' }, dbg)).toEqual(completed);
  });

  it('suspend past the save is not cancellable: a cancel is ignored while the guest hangs in VM_save', async () => {
    const id = await addStarted(c, XENOPSD);
    await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [id, 'hang'] }));
    const t = await c.ok<string>('VM.suspend', X({ id, suspend_vdi: ['VDI', 'sr/hang'] }));
    // VM_save is the first atom: the guest acknowledges at once and then never completes.
    await sleep(300);
    expect(await c.ok('Task.cancel', X({ id: t }))).toBeNull();
    await sleep(500);
    const task = await xstat(c, t);
    expect(task.state[0]).toBe('Pending');
    expect(await power(c, id)).toBe('Running');
  });

  // Product bug: `cancellable` is only recorded with the progress event written after the atom,
  // so while VM_save waits (after the acknowledgement) Task.stat still says `cancellable: true`.
  it('suspend past the save shows cancellable: false in Task.stat while VM_save waits (§7.1)', async () => {
    const id = await addStarted(c, XENOPSD);
    await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [id, 'hang'] }));
    const t = await c.ok<string>('VM.suspend', X({ id, suspend_vdi: ['VDI', 'sr/hang2'] }));
    await waitTaskWhere(c, t, (x) => x.cancellable === false, 'non-cancellable', 2_000);
  });
});
