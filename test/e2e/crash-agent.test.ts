/**
 * SIGKILL of the process that executes tasks (NATS: the agent; embedded: the only process) in the
 * middle of VM starts and of a suspend held in VM_save, then a restart (API.md §7.1, §7.3, §9.1;
 * issue 3 "How it is checked"): every acknowledged task ends Completed or Failed
 * `Internal_error "Interrupted by service restart"`, every VM is in a valid power state (no
 * half-started domain), and Task.list still holds every task id a client got back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { X, type XenopsdTask } from '../support/rpc.js';
import { addStarted, completed, power, sleep, startService, stat, waitEnd, XENOPSD, type Stat } from '../support/ops.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll } from '../support/xenopsd.js';

afterAll(cleanupAll);

const INTERRUPTED = ['Internal_error', 'Interrupted by service restart'];
const VALID = new Set(['Halted', 'Paused', 'Running', 'Suspended']);
const STARTS = 50;

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  it(`SIGKILL during ${STARTS} starts and a suspend in VM_save, then restart: tasks end Completed or Interrupted, VMs valid, no acknowledged task lost`, async () => {
    // Two worker slots: one is held by the hanging suspend, the starts share the other.
    const svc = await startService(store, { poolSize: 2 });
    let c = svc.client();

    // NATS: a VM whose clean shutdown never gets the guest's ack, to hold the second slot later.
    const blocker = store === 'nats' ? await addStarted(c, XENOPSD) : undefined;
    if (blocker) await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [blocker, 'hang'] }));
    const susp = await addStarted(c, XENOPSD);
    await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [susp, 'hang'] }));
    const suspendTask = await c.ok<string>('VM.suspend', X({ id: susp, suspend_vdi: ['VDI', 'sr/crash'] }, 'crash-suspend'));
    await sleep(300); // in VM_save: acknowledged, never completes

    const ids = Array.from({ length: STARTS }, () => vmId('crash'));
    await Promise.all(ids.map((id) => c.ok('VM.add', X({ vm: xenopsdVm(id) }))));
    const acked: { id: string; task: string }[] = [];
    let killed: Promise<void> | undefined;
    let queued = ids;
    if (blocker) {
      // Some starts run to the end; then the hanging shutdown takes the last free slot, so every
      // later start is acknowledged but waits (a start takes the simulator well under a
      // millisecond: without the blocker they would all be done before the kill).
      const first = ids.slice(0, 5);
      for (const id of first) {
        const task = await c.ok<string>('VM.start', X({ id, paused: false }, 'crash-start'));
        acked.push({ id, task });
        expect(await waitEnd(c, 'xenopsd', task, 30_000)).toEqual(completed);
      }
      await c.ok<string>('VM.shutdown', X({ id: blocker, delay: 60 }, 'crash-blocker'));
      await sleep(300); // waiting for the guest, in the second slot
      queued = ids.slice(first.length);
    }
    await Promise.allSettled(
      queued.map(async (id) => {
        const task = await c.ok<string>('VM.start', X({ id, paused: false }, 'crash-start'));
        acked.push({ id, task });
        // Embedded: the process dies while starts are queued, running and still arriving.
        if (store === 'embedded' && acked.length >= 15 && !killed) killed = svc.killEngine();
      }),
    );
    if (store === 'nats') {
      // Every start is acknowledged, five have run and the others wait: kill the agent.
      expect(acked).toHaveLength(STARTS);
      killed = svc.killEngine();
    }
    await killed;
    expect(killed).toBeDefined();
    expect(acked.length).toBeGreaterThanOrEqual(15);
    if (store === 'nats') {
      const pendingAtKill = (await c.ok<XenopsdTask[]>('Task.list', X())).filter((t) => t.dbg === 'crash-start' && t.state[0] === 'Pending');
      expect(pendingAtKill.length).toBeGreaterThan(0);
    }

    await svc.restartEngine();
    c = svc.client();

    // Nothing acknowledged is lost.
    const listed = new Set((await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id));
    for (const t of [suspendTask, ...acked.map((a) => a.task)]) expect(listed.has(t), `task ${t} in Task.list`).toBe(true);

    // The suspend was executing: interrupted; its VM is in a valid state with no half-saved domain.
    expect(await waitEnd(c, 'xenopsd', suspendTask, 30_000)).toEqual({ state: 'Failed', error: INTERRUPTED });
    const [, sst] = await stat(c, susp);
    expect(VALID.has(sst.power_state)).toBe(true);
    expect(sst.domids).toHaveLength(sst.power_state === 'Running' || sst.power_state === 'Paused' ? 1 : 0);

    const ends = await Promise.all(acked.map(async (a) => ({ ...a, end: await waitEnd(c, 'xenopsd', a.task, 60_000) })));
    let interrupted = 0;
    for (const e of ends) {
      if (e.end.state === 'Failed') {
        interrupted++;
        expect(e.end.error, `task ${e.task}`).toEqual(INTERRUPTED);
      } else expect(e.end, `task ${e.task}`).toEqual(completed);
    }
    if (process.env.E2E_VERBOSE) process.stderr.write(`${store}: ${acked.length} acked, ${interrupted} interrupted\n`);

    // Each VM ends consistent with its task: started → Paused with one domain; interrupted → torn
    // down to Halted by the state check (no half-started domain).
    await Promise.all(
      ends.map(async (e) => {
        const want = e.end.state === 'Completed' ? 'Paused' : 'Halted';
        const deadline = Date.now() + 20_000;
        for (;;) {
          const [, st] = await c.ok<Stat>('VM.stat', X({ id: e.id }));
          if (st.power_state === want) {
            expect(st.domids).toHaveLength(want === 'Paused' ? 1 : 0);
            break;
          }
          if (Date.now() > deadline) throw new Error(`VM ${e.id}: ${st.power_state}, expected ${want} after ${JSON.stringify(e.end)}`);
          await sleep(50);
        }
      }),
    );
    // VMs whose start was never acknowledged (embedded only): valid and usable.
    const all = new Map((await c.ok<Stat[]>('VM.list', X())).map(([v, s]) => [v.id as string, s]));
    for (const id of ids) {
      const st = all.get(id)!;
      expect(VALID.has(st.power_state), `${id}: ${st.power_state}`).toBe(true);
      expect(st.domids.length === 0, `${id}: ${JSON.stringify(st)}`).toBe(st.power_state === 'Halted' || st.power_state === 'Suspended');
    }

    // No VM is stuck: every one completes a shutdown.
    await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [susp, 'normal'] }));
    if (blocker) await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [blocker, 'normal'] }));
    await Promise.all(
      [susp, ...(blocker ? [blocker] : []), ...ids].map(async (id) => {
        expect(await waitEnd(c, 'xenopsd', await c.ok<string>('VM.shutdown', X({ id })), 60_000), `shutdown of ${id}`).toEqual(completed);
      }),
    );
    expect(await power(c, susp)).toBe('Halted');
    const pending = (await c.ok<XenopsdTask[]>('Task.list', X())).filter((t) => t.state[0] === 'Pending');
    expect(pending).toEqual([]);
  }, 120_000);
});
