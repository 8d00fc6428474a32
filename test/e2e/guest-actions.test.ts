/**
 * The guest side of the simulator (API.md §7.4, §7.5, §8.2, §8.3): clean shutdown and reboot
 * timeouts per dialect with `DEBUG.trigger "no-ack"`, and guest-initiated reboot / halt / crash
 * with the VM's action lists and the crash-loop guard. Both stores; xenopsd and seed dialects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S, X, type RpcClient, type XenopsdTask } from '../support/rpc.js';
import {
  addStarted,
  completed,
  dneDom,
  dneVm,
  power,
  rawXml,
  SEED,
  startService,
  stat,
  waitVm,
  XENOPSD,
} from '../support/ops.js';
import { vmId } from '../support/vms.js';
import { cleanupAll } from '../support/xenopsd.js';

afterAll(cleanupAll);

const IE = ['Internal_error', expect.any(String)];
const failed = (error: unknown) => ({ state: 'Failed', error });

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  let c: RpcClient;
  let xml: RpcClient;
  beforeAll(async () => {
    const svc = await startService(store);
    c = svc.client();
    xml = svc.client('xml');
  });

  const trigger = (cmd: string, args: string[]) => c.ok('DEBUG.trigger', X({ cmd, args }));
  const triggerFail = (cmd: string, args: string[]) => c.fail('DEBUG.trigger', X({ cmd, args }));

  describe('clean shutdown and reboot timeouts (§7.4)', () => {
    it('xenopsd: no acknowledgement → Failed_to_acknowledge_shutdown_request after the delay, VM still Running (shutdown and reboot)', async () => {
      const a = await addStarted(c, XENOPSD);
      const b = await addStarted(c, XENOPSD);
      expect(await trigger('no-ack', [a])).toBeNull();
      expect(await trigger('no-ack', [b, 'ignore'])).toBeNull();
      const [, before] = await stat(c, b);
      const t0 = Date.now();
      const [sd, rb] = await Promise.all([XENOPSD.run(c, a, { op: 'shutdown', timeout: 1 }), XENOPSD.run(c, b, { op: 'reboot', timeout: 1 })]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(sd).toEqual(failed('Failed_to_acknowledge_shutdown_request'));
      expect(rb).toEqual(failed('Failed_to_acknowledge_shutdown_request'));
      expect(await power(c, a)).toBe('Running');
      expect((await stat(c, b))[1]).toMatchObject({ power_state: 'Running', domids: before.domids });
      // Back to normal: the same calls now succeed at once.
      await trigger('no-ack', [a, 'normal']);
      await trigger('no-ack', [b, 'normal']);
      const t1 = Date.now();
      expect(await XENOPSD.run(c, a, { op: 'shutdown', timeout: 1 })).toEqual(completed);
      expect(await XENOPSD.run(c, b, { op: 'reboot', timeout: 1 })).toEqual(completed);
      expect(Date.now() - t1).toBeLessThan(900);
      expect(await power(c, a)).toBe('Halted');
      expect((await stat(c, b))[1].domids[0]).toBeGreaterThan(before.domids[0]!);
    });

    it('xenopsd: acknowledged but hanging → ["Failed_to_shutdown", [vm, 1.0]] (a float), VM still Running', async () => {
      const a = await addStarted(c, XENOPSD);
      await trigger('no-ack', [a, 'hang']);
      const t0 = Date.now();
      const task = await c.ok<string>('VM.shutdown', X({ id: a, delay: 1 }));
      expect(await XENOPSD.wait(c, task)).toEqual(failed(['Failed_to_shutdown', [a, 1]]));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(await power(c, a)).toBe('Running');
      // On the XML-RPC wire the timeout is a <double>.
      const body = await rawXml(xml, 'Task.stat', [{ debug_info: 'x', id: task }]);
      expect(body.replace(/\s+/g, '')).toMatch(
        new RegExp(`<value>(<string>)?Failed_to_shutdown(</string>)?</value><value><array><data><value>(<string>)?${a}(</string>)?</value><value><double>1(\\.0*)?</double></value>`),
      );
      // Reboot: the same.
      const rb = await XENOPSD.run(c, a, { op: 'reboot', timeout: 1 });
      expect(rb).toEqual(failed(['Failed_to_shutdown', [a, 1]]));
      expect(await power(c, a)).toBe('Running');
      // A hard shutdown ignores the guest mode.
      const t1 = Date.now();
      expect(await XENOPSD.run(c, a, { op: 'shutdown' })).toEqual(completed);
      expect(Date.now() - t1).toBeLessThan(900);
      expect(await power(c, a)).toBe('Halted');
    });

    it('seed: clean_shutdown_timeout falls back to a hard power-off (ignore and hang); Vm.reboot too; the task completes', async () => {
      const a = await addStarted(c, SEED);
      const b = await addStarted(c, SEED);
      const r = await addStarted(c, SEED);
      await trigger('no-ack', [a]);
      await trigger('no-ack', [b, 'hang']);
      await trigger('no-ack', [r, 'ignore']);
      const [, rBefore] = await stat(c, r);
      const t0 = Date.now();
      const [ea, eb, er] = await Promise.all([
        SEED.run(c, a, { op: 'shutdown', timeout: 1 }),
        SEED.run(c, b, { op: 'shutdown', timeout: 1 }),
        SEED.run(c, r, { op: 'reboot', timeout: 1 }),
      ]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect([ea, eb, er]).toEqual([completed, completed, completed]);
      expect(await power(c, a)).toBe('Halted');
      expect(await power(c, b)).toBe('Halted');
      const [, rAfter] = await stat(c, r);
      expect(rAfter.power_state).toBe('Running');
      expect(rAfter.domids[0]).toBeGreaterThan(rBefore.domids[0]!);
      // Seed hard shutdown (no timeout) with a hanging guest: immediate.
      const t1 = Date.now();
      expect(await SEED.run(c, r, { op: 'shutdown' })).toEqual(completed);
      expect(Date.now() - t1).toBeLessThan(900);
    });

    it('the acknowledgement wait is a cancellation point: Task.cancel ends it at once, VM still Running', async () => {
      const a = await addStarted(c, XENOPSD);
      await trigger('no-ack', [a]);
      const task = await c.ok<string>('VM.shutdown', X({ id: a, delay: 20 }));
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      expect(await c.ok('Task.cancel', X({ id: task }))).toBeNull();
      expect(await XENOPSD.wait(c, task, 5_000)).toEqual(failed(['Cancelled', task]));
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(await power(c, a)).toBe('Running');
    });

    it('DEBUG.trigger no-ack: unknown VM → DNE(VM); bad mode or argument count → Internal_error', async () => {
      const ghost = vmId('ghost');
      expect(await triggerFail('no-ack', [ghost])).toEqual(dneVm(ghost));
      const id = await XENOPSD.add(c);
      expect(await triggerFail('no-ack', [id, 'sulk'])).toEqual(IE);
      expect(await triggerFail('no-ack', [])).toEqual(IE);
      expect(await triggerFail('no-ack', [id, 'hang', 'x'])).toEqual(IE);
      // A Halted VM may have its mode set.
      expect(await trigger('no-ack', [id, 'normal'])).toBeNull();
    });
  });

  describe('guest-initiated actions (§7.5)', () => {
    it('reboot with on_reboot [Start] → Running with a new domid', async () => {
      for (const d of [XENOPSD, SEED]) {
        const id = await addStarted(c, d, { on_reboot: ['Start'] });
        const [, before] = await stat(c, id);
        expect(await trigger('reboot', [id])).toBeNull();
        const [, after] = (await waitVm(c, id, (s) => s?.[1].power_state === 'Running' && s[1].domids[0]! > before.domids[0]!, 'rebooted'))!;
        expect(after.domids).toHaveLength(1);
      }
    });

    it('halt with on_shutdown [Shutdown] → Halted; halt with on_shutdown [Start] → Running again', async () => {
      const a = await addStarted(c, XENOPSD, { on_shutdown: ['Shutdown'] });
      await trigger('halt', [a]);
      await waitVm(c, a, (s) => s?.[1].power_state === 'Halted' && s[1].domids.length === 0, 'Halted');
      const b = await addStarted(c, SEED, { on_shutdown: ['Start'] });
      const [, before] = await stat(c, b);
      await trigger('halt', [b]);
      await waitVm(c, b, (s) => s?.[1].power_state === 'Running' && s[1].domids[0]! > before.domids[0]!, 'restarted');
    });

    it('crash within 120 s of start with on_crash [Start] → Halted (crash-loop guard); [Coredump] alone is treated as [Shutdown]', async () => {
      const a = await addStarted(c, XENOPSD, { on_crash: ['Start'] });
      const b = await addStarted(c, XENOPSD, { on_crash: ['Coredump'] });
      const s = await addStarted(c, SEED, { on_crash: ['Coredump', 'Start'] });
      for (const id of [a, b, s]) expect(await trigger('crash', [id])).toBeNull();
      for (const id of [a, b, s]) await waitVm(c, id, (st) => st?.[1].power_state === 'Halted' && st[1].domids.length === 0, 'Halted');
      // And the VMs are still usable.
      expect(await XENOPSD.run(c, a, { op: 'start' })).toEqual(completed);
    });

    it('reboot with on_reboot [Pause] → Paused, same domain', async () => {
      const id = await addStarted(c, XENOPSD, { on_reboot: ['Pause'] });
      const [, before] = await stat(c, id);
      await trigger('reboot', [id]);
      const [, after] = (await waitVm(c, id, (s) => s?.[1].power_state === 'Paused', 'Paused'))!;
      expect(after.domids).toEqual(before.domids);
    });

    it('a transient seed VM is removed by a guest halt', async () => {
      const id = await addStarted(c, SEED, { transient: true, on_shutdown: ['Shutdown'] });
      expect((await c.ok<[Record<string, unknown>, unknown][]>('Vm.stat', S({ id })))[0]![0].transient).toBe(true);
      await trigger('halt', [id]);
      await waitVm(c, id, (s) => s === undefined, 'removed');
      expect(await c.ok('VM.exists', X({ id }))).toBe(false);
      expect(await c.ok('Vm.stat', S({ id }))).toEqual([]);
    });

    it('the internal check_state tasks are destroyed when they end', async () => {
      const id = await addStarted(c, XENOPSD, { on_reboot: ['Start'] });
      const [, before] = await stat(c, id);
      await trigger('reboot', [id]);
      await waitVm(c, id, (s) => s?.[1].power_state === 'Running' && s[1].domids[0]! > before.domids[0]!, 'rebooted');
      const deadline = Date.now() + 10_000;
      for (;;) {
        const internal = (await c.ok<XenopsdTask[]>('Task.list', X())).filter((t) => t.dbg === 'internal:check_state');
        if (internal.length === 0) break;
        if (Date.now() > deadline) throw new Error(`internal tasks left: ${JSON.stringify(internal)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      await waitVm(c, id, (s) => s?.[1].power_state === 'Running', 'Running');
    });

    it('DEBUG.trigger errors: no domain → DNE(dom); unknown VM → DNE(VM); wrong argument count → Internal_error; unknown cmd → Unimplemented', async () => {
      const halted = await XENOPSD.add(c);
      const ghost = vmId('ghost');
      for (const cmd of ['reboot', 'halt', 'crash', 'check-vbd-plug-ordering']) {
        expect(await triggerFail(cmd, [halted])).toEqual(dneDom(halted));
        expect(await triggerFail(cmd, [ghost])).toEqual(dneVm(ghost));
        expect(await triggerFail(cmd, [])).toEqual(IE);
        expect(await triggerFail(cmd, [halted, 'extra'])).toEqual(IE);
      }
      expect(await triggerFail('explode', [halted])).toEqual(['Unimplemented', 'explode']);
      expect(await triggerFail('set-cancel-trigger', ['dbg'])).toEqual(IE);
      expect(await triggerFail('set-cancel-trigger', ['dbg', 'two'])).toEqual(IE);
      expect(await triggerFail('set-cancel-trigger', ['dbg', '1.5'])).toEqual(IE);
      // A running VM passes the VBD ordering check (it has no VBDs).
      const running = await addStarted(c, XENOPSD);
      expect(await trigger('check-vbd-plug-ordering', [running])).toBeNull();
      expect(await power(c, halted)).toBe('Halted');
    });
  });
});
