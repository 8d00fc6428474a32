/**
 * Every VM operation of API.md §5.2 / §5.4 with the semantics of §7.1–§7.3, §7.9–§7.11 and the
 * simulator of §8, driven over RPC against real xenopsd processes: both stores (embedded; NATS
 * gateway + agent), both dialects where the seed has the method, JSON-RPC v1 (and an XML-RPC
 * sample at the end). Issue 3, "How it is checked".
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S, X, waitTask, type RpcClient, type XenopsdTask } from '../support/rpc.js';
import {
  addStarted,
  bps,
  completed,
  DIALECTS,
  dneDom,
  dneVm,
  power,
  rawXml,
  SEED,
  sleep,
  startService,
  stat,
  waitEnd,
  waitVm,
  XENOPSD,
  type Op,
  type Service,
  type Stat,
} from '../support/ops.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, makeTempDir } from '../support/xenopsd.js';
import { xmlDouble } from '../support/xmlrpc.js';

afterAll(cleanupAll);

const IE = ['Internal_error', expect.any(String)];
const failed = (error: unknown) => ({ state: 'Failed', error });

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  let svc: Service;
  let c: RpcClient;
  beforeAll(async () => {
    svc = await startService(store);
    c = svc.client();
  });

  describe.each(DIALECTS)('$name dialect', (d) => {
    it('low-level calls: build/create_device_model without a domain, create, create again, pause/unpause unbuilt, build, dm, unpause, destroy', async () => {
      const id = await d.add(c);
      expect(await d.run(c, id, { op: 'build' })).toEqual(failed(dneDom(id)));
      expect(await d.run(c, id, { op: 'create_device_model', saveState: false })).toEqual(failed(dneDom(id)));
      expect(await power(c, id)).toBe('Halted');

      expect(await d.run(c, id, { op: 'create' })).toEqual(completed);
      let [, st] = await stat(c, id);
      expect(st.power_state).toBe('Paused'); // created paused (§7.3)
      expect(st.domids).toHaveLength(1);
      const domid = st.domids[0]!;

      expect(await d.run(c, id, { op: 'create' })).toEqual(failed(d.alreadyExists('domain', id)));
      expect(await d.run(c, id, { op: 'pause' })).toEqual(failed('Domain_not_built'));
      expect(await d.run(c, id, { op: 'unpause' })).toEqual(failed('Domain_not_built'));
      // The low-level calls run exactly their atom: no state check tore the domain down.
      expect((await stat(c, id))[1]).toMatchObject({ power_state: 'Paused', domids: [domid] });

      expect(await d.run(c, id, { op: 'build' })).toEqual(completed);
      expect(await d.run(c, id, { op: 'create_device_model', saveState: false })).toEqual(completed);
      expect(await d.run(c, id, { op: 'unpause' })).toEqual(completed);
      [, st] = await stat(c, id);
      expect(st).toMatchObject({ power_state: 'Running', domids: [domid] });

      expect(await d.run(c, id, { op: 'pause' })).toEqual(completed);
      expect(await power(c, id)).toBe('Paused');
      expect(await d.run(c, id, { op: 'unpause' })).toEqual(completed);
      expect(await power(c, id)).toBe('Running');
      // unpause is a no-op unless Paused.
      expect(await d.run(c, id, { op: 'unpause' })).toEqual(completed);
      expect(await power(c, id)).toBe('Running');

      expect(await d.run(c, id, { op: 'destroy' })).toEqual(completed);
      [, st] = await stat(c, id);
      expect(st).toMatchObject({ power_state: 'Halted', domids: [] });
      // destroy with no domain: still completes.
      expect(await d.run(c, id, { op: 'destroy' })).toEqual(completed);
    });

    it('VM.destroy of a Running VM leaves it Halted', async () => {
      const id = await addStarted(c, d);
      expect(await d.run(c, id, { op: 'destroy' })).toEqual(completed);
      expect((await stat(c, id))[1]).toMatchObject({ power_state: 'Halted', domids: [], vcpu_target: 0, memory_target: 0 });
    });

    it('set_vcpus: vcpus check first (0, > vcpu_max), DNE(dom) when Halted, Domain_not_built, success changes vcpu_target only', async () => {
      const id = await d.add(c, { vcpu_max: 4, vcpus: 2 });
      // Checked before the domain (as xenopsd), so a Halted VM gets the vCPU error first.
      for (const n of [0, -1, 5]) expect(await d.run(c, id, { op: 'set_vcpus', n })).toEqual(failed(d.vcpusError(4)));
      expect(await d.run(c, id, { op: 'set_vcpus', n: 3 })).toEqual(failed(dneDom(id)));
      // A domain that is not built yet.
      expect(await d.run(c, id, { op: 'create' })).toEqual(completed);
      expect(await d.run(c, id, { op: 'set_vcpus', n: 3 })).toEqual(failed('Domain_not_built'));
      expect(await d.run(c, id, { op: 'destroy' })).toEqual(completed);

      await d.run(c, id, { op: 'start' });
      expect((await stat(c, id))[1].vcpu_target).toBe(2);
      expect(await d.run(c, id, { op: 'set_vcpus', n: 5 })).toEqual(failed(d.vcpusError(4)));
      expect(await d.run(c, id, { op: 'set_vcpus', n: 3 })).toEqual(completed);
      const [cfg, st] = await stat(c, id);
      expect(st.vcpu_target).toBe(3);
      expect(cfg.vcpus).toBe(2);
      expect(cfg.vcpu_max).toBe(4);
      expect(await d.run(c, id, { op: 'set_vcpus', n: 4 })).toEqual(completed);
      expect((await stat(c, id))[1].vcpu_target).toBe(4);
      await d.run(c, id, { op: 'shutdown' });
    });

    if (d.name === 'xenopsd') {
      it('set_vcpus on an HVM domain built but without device model is Domain_not_built', async () => {
        const id = await d.add(c);
        await d.run(c, id, { op: 'create' });
        await d.run(c, id, { op: 'build' });
        expect(await d.run(c, id, { op: 'set_vcpus', n: 1 })).toEqual(failed('Domain_not_built'));
        expect(await d.run(c, id, { op: 'set_shadow_multiplier', m: 2.5 })).toEqual(failed('Domain_not_built'));
        await d.run(c, id, { op: 'create_device_model', saveState: false });
        expect(await d.run(c, id, { op: 'set_vcpus', n: 1 })).toEqual(completed);
        await d.run(c, id, { op: 'destroy' });
      });
    }

    it('set_shadow_multiplier: DNE(dom) when Halted, Domain_not_built unbuilt, success sets shadow_multiplier_target', async () => {
      const id = await d.add(c);
      expect(await d.run(c, id, { op: 'set_shadow_multiplier', m: 2.5 })).toEqual(failed(dneDom(id)));
      await d.run(c, id, { op: 'create' });
      expect(await d.run(c, id, { op: 'set_shadow_multiplier', m: 2.5 })).toEqual(failed('Domain_not_built'));
      await d.run(c, id, { op: 'destroy' });
      await d.run(c, id, { op: 'start' });
      expect((await stat(c, id))[1].shadow_multiplier_target).toBe(1);
      expect(await d.run(c, id, { op: 'set_shadow_multiplier', m: 2.5 })).toEqual(completed);
      expect((await stat(c, id))[1].shadow_multiplier_target).toBe(2.5);
      await d.run(c, id, { op: 'shutdown' });
    });

    it('start / reboot / shutdown: start leaves the dialect power state, reboot stays Running with a new domid, domids never reused', async () => {
      const id = await d.add(c);
      const seen: number[] = [];
      expect(await d.run(c, id, { op: 'start' })).toEqual(completed);
      let [, st] = await stat(c, id);
      expect(st.power_state).toBe(d.startEnds);
      seen.push(st.domids[0]!);
      if (d.name === 'xenopsd') await d.run(c, id, { op: 'unpause' });
      expect(await power(c, id)).toBe('Running');

      for (const timeout of [undefined, 5]) {
        // VM.stat reports Running throughout a reboot (§4.3).
        const task = await d.submit(c, id, { op: 'reboot', timeout });
        const states = new Set<string>();
        let end;
        for (;;) {
          states.add(await power(c, id));
          const t = await c.ok<XenopsdTask>('Task.stat', X({ id: task }));
          if (t.state[0] !== 'Pending') break;
        }
        end = await d.wait(c, task);
        expect(end).toEqual(completed);
        expect([...states]).toEqual(['Running']);
        [, st] = await stat(c, id);
        expect(st.power_state).toBe('Running');
        expect(st.domids).toHaveLength(1);
        expect(st.domids[0]).toBeGreaterThan(seen.at(-1)!);
        seen.push(st.domids[0]!);
      }
      expect(await d.run(c, id, { op: 'shutdown', timeout: 5 })).toEqual(completed);
      expect((await stat(c, id))[1]).toMatchObject({ power_state: 'Halted', domids: [] });
      // A Halted VM: shutdown is a no-op that completes.
      expect(await d.run(c, id, { op: 'shutdown', timeout: 5 })).toEqual(completed);
      expect(await d.run(c, id, { op: 'start' })).toEqual(completed);
      [, st] = await stat(c, id);
      expect(st.domids[0]).toBeGreaterThan(seen.at(-1)!);
      expect(await d.run(c, id, { op: 'shutdown' })).toEqual(completed);
      expect(await power(c, id)).toBe('Halted');
    });

    it('suspend to a Local path writes a self-describing image; resume restores the domain from it', async () => {
      const dir = await makeTempDir('susp');
      const id = await addStarted(c, d, { vcpu_max: 2, vcpus: 2 });
      expect(await d.run(c, id, { op: 'set_vcpus', n: 1 })).toEqual(completed);
      const [, before] = await stat(c, id);
      const file = path.join(dir, 'a.img');
      expect(await d.run(c, id, { op: 'suspend', disk: ['Local', file] })).toEqual(completed);
      expect((await stat(c, id))[1]).toMatchObject({ power_state: 'Suspended', domids: [], vcpu_target: 0 });

      const image = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      expect(image).toMatchObject({ format: expect.any(String), version: expect.any(Number), vm: id, domain: expect.any(Object) });

      expect(await d.run(c, id, { op: 'resume', disk: ['Local', file] })).toEqual(completed);
      const [, after] = await stat(c, id);
      expect(after.power_state).toBe(d.startEnds);
      expect(after.domids).toHaveLength(1);
      expect(after.domids[0]).toBeGreaterThan(before.domids[0]!);
      // Restored from the image: the live vCPU count survives the round trip.
      expect(after.vcpu_target).toBe(1);
      expect(after.memory_target).toBe(before.memory_target);
      // The image is consumed: the VM is no longer Suspended after a shutdown.
      expect(await d.run(c, id, { op: 'shutdown' })).toEqual(completed);
      expect(await power(c, id)).toBe('Halted');
    });

    it('resume from a missing, corrupt or foreign image fails Internal_error naming the file, and the VM stays Suspended', async () => {
      const dir = await makeTempDir('susp');
      const a = await addStarted(c, d);
      const b = await addStarted(c, d);
      const fa = path.join(dir, 'a.img');
      const fb = path.join(dir, 'b.img');
      expect(await d.run(c, a, { op: 'suspend', disk: ['Local', fa] })).toEqual(completed);
      expect(await d.run(c, b, { op: 'suspend', disk: ['Local', fb] })).toEqual(completed);
      const garbage = path.join(dir, 'garbage.img');
      await writeFile(garbage, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x7b, 0xff, 0x22]));
      const missing = path.join(dir, 'missing.img');
      for (const bad of [missing, garbage, fb]) {
        const end = await d.run(c, a, { op: 'resume', disk: ['Local', bad] });
        expect(end).toEqual(failed(IE));
        expect((end as { error: [string, string] }).error[1]).toContain(bad);
        await waitVm(c, a, (s) => s?.[1].power_state === 'Suspended' && s[1].domids.length === 0, 'Suspended again');
      }
      // The real image still works.
      expect(await d.run(c, a, { op: 'resume', disk: ['Local', fa] })).toEqual(completed);
      expect(await power(c, a)).toBe(d.startEnds);
      for (const id of [a, b]) expect(await d.run(c, id, { op: 'shutdown' })).toEqual(completed);
    });

    it('suspend to a VDI, resume from it; shutdown of a Suspended VM leaves it Halted and drops the image', async () => {
      const id = await addStarted(c, d);
      expect(await d.run(c, id, { op: 'suspend', disk: ['VDI', 'sr/vdi'] })).toEqual(completed);
      expect(await power(c, id)).toBe('Suspended');
      expect(await d.run(c, id, { op: 'resume', disk: ['VDI', 'sr/vdi'] })).toEqual(completed);
      expect(await power(c, id)).toBe(d.startEnds);
      expect(await d.run(c, id, { op: 'suspend', disk: ['VDI', 'sr/vdi'] })).toEqual(completed);
      expect(await power(c, id)).toBe('Suspended');
      expect(await d.run(c, id, { op: 'shutdown', timeout: 5 })).toEqual(completed);
      expect((await stat(c, id))[1]).toMatchObject({ power_state: 'Halted', domids: [] });
      // The image is gone: resume now fails the precondition.
      expect(await d.run(c, id, { op: 'resume', disk: ['VDI', 'sr/vdi'] })).toEqual(failed(bps('Halted', 'Suspended')));
    });

    it('power preconditions (§7.3): start of Running, resume of Halted, suspend/reboot of Halted; remove of a Suspended VM works', async () => {
      const id = await d.add(c);
      expect(await d.run(c, id, { op: 'resume', disk: ['VDI', 'sr/x'] })).toEqual(failed(bps('Halted', 'Suspended')));
      expect(await d.run(c, id, { op: 'suspend', disk: ['VDI', 'sr/x'] })).toEqual(failed(bps('Halted', 'Running')));
      expect(await d.run(c, id, { op: 'reboot' })).toEqual(failed(bps('Halted', 'Running')));
      expect(await d.run(c, id, { op: 'reboot', timeout: 5 })).toEqual(failed(bps('Halted', 'Running')));
      expect(await d.run(c, id, { op: 'start' })).toEqual(completed);
      if (d.name === 'xenopsd') await d.run(c, id, { op: 'unpause' });
      expect(await d.run(c, id, { op: 'start' })).toEqual(failed(bps('Running', 'Halted')));
      expect(await power(c, id)).toBe('Running');
      expect(await d.run(c, id, { op: 'resume', disk: ['VDI', 'sr/x'] })).toEqual(failed(bps('Running', 'Suspended')));
      expect(await d.run(c, id, { op: 'suspend', disk: ['VDI', 'sr/x'] })).toEqual(completed);
      expect(await d.run(c, id, { op: 'start' })).toEqual(failed(bps('Suspended', 'Halted')));
      expect(await power(c, id)).toBe('Suspended');
      expect(await c.ok(d.name === 'seed' ? 'Vm.remove' : 'VM.remove', d.args({ id }))).toBeNull();
      expect(await c.ok('VM.exists', X({ id }))).toBe(false);
    });

    it('s3suspend and s3resume complete (no-ops in the simulator)', async () => {
      const id = await addStarted(c, d);
      expect(await d.run(c, id, { op: 's3suspend' })).toEqual(completed);
      expect(await d.run(c, id, { op: 's3resume' })).toEqual(completed);
      expect(await power(c, id)).toBe('Running');
      // Any power state.
      await d.run(c, id, { op: 'shutdown' });
      expect(await d.run(c, id, { op: 's3suspend' })).toEqual(completed);
    });

    it('a T call on an unknown VM is an error of the call (DNE(VM)) and creates no task', async () => {
      const ghost = vmId('ghost');
      const before = await c.ok<number>('UPDATES.last_id', X());
      for (const op of [{ op: 'create' }, { op: 'set_vcpus', n: 1 }, { op: 'suspend', disk: ['VDI', 'x'] }, { op: 's3resume' }] as Op[]) {
        const out = await d.submitRaw(c, ghost, op);
        expect(out.ok).toBe(false);
        expect(out.ok ? null : out.error).toEqual(dneVm(ghost));
      }
      expect(await c.ok<number>('UPDATES.last_id', X())).toBe(before);
    });
  });

  describe('xenopsd-only VM calls', () => {
    it('set_memory_dynamic_range: min > max and max > static_max are Internal_error (checked first); success sets memory_target = memory_actual = maximum', async () => {
      const id = await XENOPSD.add(c); // static_max 1 GiB
      const run = async (minimum: number, maximum: number) =>
        waitEnd(c, 'xenopsd', await c.ok<string>('VM.set_memory_dynamic_range', X({ id, minimum, maximum })));
      expect(await run(2 ** 29, 2 ** 28)).toEqual(failed(IE));
      expect(await run(2 ** 28, 2 ** 31)).toEqual(failed(IE));
      expect(await run(2 ** 28, 2 ** 29)).toEqual(failed(dneDom(id)));
      await addStartedExisting(c, id);
      expect(await run(2 ** 29, 2 ** 28)).toEqual(failed(IE));
      expect(await run(2 ** 28, 2 ** 31)).toEqual(failed(IE));
      expect(await run(2 ** 28, 805306368)).toEqual(completed);
      const [cfg, st] = await stat(c, id);
      expect(st).toMatchObject({ memory_target: 805306368, memory_actual: 805306368, memory_limit: 2 ** 30 });
      expect(cfg).toMatchObject({ memory_dynamic_min: 536870912, memory_dynamic_max: 1073741824 });
      expect(await run(2 ** 30, 2 ** 30)).toEqual(completed);
      expect((await stat(c, id))[1]).toMatchObject({ memory_target: 2 ** 30, memory_actual: 2 ** 30 });
    });

    it('set_xsdata merges into xsdata_state in call order; DNE(dom) without a domain', async () => {
      const id = await XENOPSD.add(c, { xsdata: { a: '0', b: '0' } });
      const run = async (xsdata: Record<string, string>) => waitEnd(c, 'xenopsd', await c.ok<string>('VM.set_xsdata', X({ id, xsdata })));
      expect(await run({ a: '1' })).toEqual(failed(dneDom(id)));
      await addStartedExisting(c, id);
      expect((await stat(c, id))[1].xsdata_state).toEqual({ a: '0', b: '0' });
      // Queued back to back: applied in call order.
      const t1 = await c.ok<string>('VM.set_xsdata', X({ id, xsdata: { a: '1', c: '1' } }));
      const t2 = await c.ok<string>('VM.set_xsdata', X({ id, xsdata: { c: '2', d: '2' } }));
      expect(await waitEnd(c, 'xenopsd', t1)).toEqual(completed);
      expect(await waitEnd(c, 'xenopsd', t2)).toEqual(completed);
      const [cfg, st] = await stat(c, id);
      expect(st.xsdata_state).toEqual({ a: '1', b: '0', c: '2', d: '2' });
      expect(cfg.xsdata).toEqual({ a: '0', b: '0' });
    });

    it('VM.delay 0.3 takes at least 0.3 s; request_rdp and run_script complete; run_script yields {rc,stdout,stderr}', async () => {
      const id = await XENOPSD.add(c);
      const t0 = Date.now();
      const t = await c.ok<string>('VM.delay', X({ id, delay: 0.3 }));
      const end = await waitEnd(c, 'xenopsd', t);
      expect(end).toEqual(completed);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect((end as { duration: number }).duration).toBeGreaterThanOrEqual(0.29);

      for (const enabled of [true, false]) {
        expect(await waitEnd(c, 'xenopsd', await c.ok<string>('VM.request_rdp', X({ id, enabled })))).toEqual(completed);
      }
      const rs = await c.ok<string>('VM.run_script', X({ id, script: 'echo hi' }));
      await waitEnd(c, 'xenopsd', rs);
      const task = await c.ok<XenopsdTask>('Task.stat', X({ id: rs }));
      expect(task.state).toEqual(['Completed', { duration: expect.any(Number), result: { rc: 0, stdout: '', stderr: '' } }]);
      // Tasks without a result carry none.
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: t }))).state[1]).not.toHaveProperty('result');
    });

    it('generate_state_string is ""; VM.fast_resume is Unimplemented; VM.migrate to a URL naming no host fails its task, the VM running on', async () => {
      expect(await c.ok('VM.generate_state_string', X({ vm: xenopsdVm() }))).toBe('');
      const id = await addStarted(c, XENOPSD);
      const mig = await c.ok<string>('VM.migrate', X({ id, vdi_map: {}, vif_map: {}, pci_map: {}, xenops_url: 'xenops://elsewhere', compress: false, verify_dest: false, localhost_migration: false }));
      expect((await waitTask(c, mig)).state).toEqual(['Failed', ['Failed_to_contact_remote_service', 'xenops://elsewhere']]);
      expect(await c.fail('VM.fast_resume', X({ id }))).toEqual(['Unimplemented', 'VM.fast_resume']);
      expect(await c.fail('vm.fast_resume', X({ id }))).toEqual(['Unimplemented', 'VM.fast_resume']);
      const seedMig = await c.ok<string>('Vm.migrate', S({ id, url: 'xenops://elsewhere' }));
      expect((await waitTask(c, seedMig)).state[0]).toBe('Failed');
      expect(await power(c, id)).toBe('Running');
    });

    it('HOST.*: stat, console data, total memory, debug keys, pool size, guest agent features, cpu policies, numa policy', async () => {
      expect(await c.ok('HOST.stat', X())).toEqual({
        cpu_info: {
          cpu_count: 0,
          socket_count: 0,
          threads_per_core: 0,
          vendor: 'unknown',
          speed: 'unknown',
          modelname: 'unknown',
          family: 'unknown',
          model: 'unknown',
          stepping: 'unknown',
          flags: 'unknown',
          features: '',
          features_pv: '',
          features_hvm: '',
          features_pv_host: '',
          features_hvm_host: '',
        },
        hypervisor: { version: 'unknown', capabilities: 'unknown' },
        chipset_info: { iommu: false, hvm: true },
      });
      expect(await c.ok('HOST.get_console_data', X())).toBe('xenops-ts simulator');
      expect(await c.ok('HOST.get_total_memory_mib', X())).toBe(1048576);
      expect(await c.ok('HOST.send_debug_keys', X({ debug_keys: 'q' }))).toBeNull();
      expect(await c.fail('HOST.set_worker_pool_size', X({ pool_size: 0 }))).toEqual(IE);
      expect(await c.fail('HOST.set_worker_pool_size', X({ pool_size: -3 }))).toEqual(IE);
      expect(await c.ok('HOST.set_worker_pool_size', X({ pool_size: 4 }))).toBeNull();
      expect(JSON.parse(await c.ok<string>('get_diagnostics', X())).workers.size).toBe(4);
      expect(await c.ok('HOST.set_worker_pool_size', X({ pool_size: 16 }))).toBeNull();
      expect(await c.ok('HOST.update_guest_agent_features', X({ features: [{ name: 'feat', licensed: true, parameters: { k: 'v' } }] }))).toBeNull();
      expect(await c.ok('HOST.update_guest_agent_features', X({ features: [] }))).toBeNull();

      expect(await c.ok('HOST.combine_cpu_policies', X({ policy1: '0000000f-000000ff', policy2: '00000003' }))).toBe('00000003-00000000');
      expect(await c.ok('HOST.combine_cpu_policies', X({ policy1: '', policy2: '' }))).toBe('');
      for (const bad of ['xyz', '0000000f-', '123', '0000000g']) {
        expect(await c.fail('HOST.combine_cpu_policies', X({ policy1: bad, policy2: '00000003' }))).toEqual(IE);
        expect(await c.fail('HOST.is_compatible', X({ vm_policy: '00000003', host_policy: bad }))).toEqual(IE);
      }
      expect(await c.ok('HOST.is_compatible', X({ vm_policy: '00000003', host_policy: '0000000f-000000ff' }))).toBe(true);
      expect(await c.ok('HOST.is_compatible', X({ vm_policy: '0000000f', host_policy: '00000003' }))).toBe(false);
      expect(await c.ok('HOST.is_compatible', X({ vm_policy: '00000000-00000001', host_policy: '00000003' }))).toBe(false);
      expect(await c.ok('HOST.is_compatible', X({ vm_policy: '', host_policy: '' }))).toBe(true);

      for (const policy of ['Any', 'Best_effort', 'Best_effort_hard', 'Prio_mem_only']) {
        expect(await c.ok('HOST.set_numa_affinity_policy', X({ numa_affinity_policy: policy }))).toBeNull();
      }
      expect(await c.ok('HOST.set_numa_affinity_policy', X())).toBeNull();
    });

    it('get_diagnostics: JSON text with instance_id, host, mode, seq, workers {size, busy}, queues, tasks, barriers', async () => {
      const q = await c.ok<{ instance_id: string }>('query', X());
      const id = await XENOPSD.add(c);
      const delay = await c.ok<string>('VM.delay', X({ id, delay: 0.5 }));
      const queued = await c.ok<string>('VM.shutdown', X({ id }));
      await sleep(100);
      const text = await c.ok<string>('get_diagnostics', X());
      expect(typeof text).toBe('string');
      const diag = JSON.parse(text) as Record<string, unknown>;
      expect(diag).toMatchObject({
        instance_id: q.instance_id,
        host: expect.any(String),
        mode: store,
        seq: expect.any(Number),
        workers: { size: 16, busy: expect.any(Number) },
        queues: expect.any(Object),
        tasks: expect.any(Array),
        barriers: expect.any(Array),
      });
      expect((diag.workers as { busy: number }).busy).toBeGreaterThanOrEqual(1);
      expect(diag.tasks).toEqual(expect.arrayContaining([delay, queued]));
      expect((diag.queues as Record<string, string[]>)[id]).toContain(queued);
      await waitEnd(c, 'xenopsd', queued);
    });

    // Product bug: get_diagnostics always reports "barriers": [] (packages/gateway/src/methods/host.ts).
    it('get_diagnostics lists the ids of injected barriers', async () => {
      const id = await XENOPSD.add(c);
      const barrier = 424242;
      expect(await c.ok('UPDATES.inject_barrier', X({ vm_id: id, id: barrier }))).toBeNull();
      try {
        const diag = JSON.parse(await c.ok<string>('get_diagnostics', X())) as { barriers: unknown[] };
        expect(diag.barriers.map(Number)).toContain(barrier);
      } finally {
        await c.ok('UPDATES.remove_barrier', X({ id: barrier }));
      }
    });

    it('Task.destroy_on_finish: a finished task is destroyed at once; a running VM.delay when it ends', async () => {
      const id = await XENOPSD.add(c);
      const done = await c.ok<string>('VM.shutdown', X({ id }));
      await waitEnd(c, 'xenopsd', done);
      expect(await c.ok('Task.destroy_on_finish', X({ id: done }))).toBeNull();
      expect(await c.fail('Task.stat', X({ id: done }))).toEqual(['Does_not_exist', ['task', done]]);

      const running = await c.ok<string>('VM.delay', X({ id, delay: 0.6 }));
      await sleep(100);
      expect(await c.ok('Task.destroy_on_finish', X({ id: running }))).toBeNull();
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: running }))).state[0]).toBe('Pending');
      expect((await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id)).toContain(running);
      const deadline = Date.now() + 10_000;
      while ((await c.named('Task.stat', X({ id: running }))).ok) {
        if (Date.now() > deadline) throw new Error('the task was never destroyed');
        await sleep(25);
      }
      expect((await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id)).not.toContain(running);
      expect(await c.fail('Task.destroy_on_finish', X({ id: running }))).toEqual(['Does_not_exist', ['task', running]]);
    });

    it('Observer.* are accepted no-ops in any form and under either debug key', async () => {
      const names = [
        'create',
        'destroy',
        'set_enabled',
        'set_attributes',
        'set_endpoints',
        'init',
        'set_trace_log_dir',
        'set_export_interval',
        'set_export_chunk_size',
        'set_max_spans',
        'set_max_traces',
        'set_max_depth',
        'set_max_file_size',
        'set_host_id',
        'set_compress_tracing_files',
      ];
      for (const n of names) {
        expect(await c.ok(`Observer.${n}`, X({ uuid: 'u', whatever: [1, 2] }))).toBeNull();
        expect(await c.ok(`observer.${n}`, S({ enabled: true }))).toBeNull();
        const pos = await c.call(`Observer.${n}`, ['dbg', 'u', 3]);
        expect(pos).toMatchObject({ ok: true, value: null });
      }
    });

    it('task progress advances by atom weight (§7.1), as the audit log records it: suspend VM_save weighs 10 of 13', async () => {
      const id = await addStarted(c, XENOPSD, {}, false);
      await c.ok<string>('VM.unpause', X({ id }));
      const suspend = await c.ok<string>('VM.suspend', X({ id, suspend_vdi: ['VDI', 'sr/p'] }));
      await waitEnd(c, 'xenopsd', suspend);
      const start = await c.ok<string>('VM.resume', X({ id, suspend_vdi: ['VDI', 'sr/p'] }));
      await waitEnd(c, 'xenopsd', start);
      // Every step's progress is a TaskProgressed event in the log, whatever message carries it.
      const progressOf = async (task: string) => {
        const res = await fetch(`${svc.url()}/log?task=${task}`);
        const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { event: string; text: string });
        return lines.filter((e) => e.event === 'TaskProgressed').map((e) => Number(/\((\d+)%\)/.exec(e.text)![1]));
      };
      // The point of no return (0 %, inside VM_save), VM_save (weight 10 of 13: 77 %), then the
      // teardown's pause and device model; its last atom ends the task.
      expect(await progressOf(suspend)).toEqual([0, 77, 85, 92]);
      // VM_create (1), VM_restore (10), device model (1), then mark_survivable ends the task.
      expect(await progressOf(start)).toEqual([8, 85, 92]);
      const final = await c.ok<XenopsdTask>('Task.stat', X({ id: start }));
      expect(final.debug_info).toEqual({ cancel_points_seen: '4' });
      expect(final.state[0]).toBe('Completed');
      // The suspend passed its point of no return.
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: suspend }))).cancellable).toBe(false);
      expect(final.cancellable).toBe(true);
    });
  });

  describe('metadata (§7.9)', () => {
    it('export_metadata / import_metadata round trip across dialects; seed export lacks vgpus/vusbs; a running VM exports domains', async () => {
      const src = await XENOPSD.add(c, { name: 'meta-src', xsdata: { k: 'v' }, vcpu_max: 3 });
      const xdoc = JSON.parse(await c.ok<string>('VM.export_metadata', X({ id: src }))) as Record<string, unknown>;
      expect(Object.keys(xdoc).sort()).toEqual(['pcis', 'vbds', 'vgpus', 'vifs', 'vm', 'vusbs']);
      const sdoc = JSON.parse(await c.ok<string>('Vm.export_metadata', S({ id: src }))) as Record<string, unknown>;
      expect(Object.keys(sdoc).sort()).toEqual(['pcis', 'vbds', 'vifs', 'vm']);
      expect((sdoc.vm as Record<string, unknown>).transient).toBe(false);
      const [srcCfg] = await stat(c, src);

      // xenopsd export → seed import under a new id; seed export → xenopsd import under another.
      const viaSeed = vmId('meta-s');
      expect(await c.ok('Vm.import_metadata', S({ config: JSON.stringify({ ...xdoc, vm: { ...(xdoc.vm as object), id: viaSeed } }) }))).toBe(viaSeed);
      const viaX = vmId('meta-x');
      expect(await c.ok('VM.import_metadata', X({ metadata: JSON.stringify({ ...sdoc, vm: { ...(sdoc.vm as object), id: viaX } }) }))).toBe(viaX);
      for (const id of [viaSeed, viaX]) {
        const [cfg, st] = await stat(c, id);
        expect(cfg).toEqual({ ...srcCfg, id });
        expect(st.power_state).toBe('Halted');
      }
      // The imported VMs work.
      expect(await XENOPSD.run(c, viaSeed, { op: 'start' })).toEqual(completed);

      // A seed VM exported by xenopsd and re-imported by the seed keeps its seed shape.
      const seedSrc = await SEED.add(c, { name: 'meta-seed' });
      const sx = JSON.parse(await c.ok<string>('VM.export_metadata', X({ id: seedSrc }))) as Record<string, unknown>;
      const back = vmId('meta-b');
      await c.ok('Vm.import_metadata', S({ config: JSON.stringify({ ...sx, vm: { ...(sx.vm as object), id: back } }) }));
      const [[scfg]] = await c.ok<Stat[]>('Vm.stat', S({ id: back }));
      const [[orig]] = await c.ok<Stat[]>('Vm.stat', S({ id: seedSrc }));
      expect(scfg).toEqual({ ...orig, id: back });
      expect(scfg).toMatchObject({ name: 'meta-seed', transient: false });

      // A VM with a domain exports `domains` (an opaque string).
      const running = await addStarted(c, XENOPSD);
      const rdoc = JSON.parse(await c.ok<string>('VM.export_metadata', X({ id: running }))) as Record<string, unknown>;
      expect(typeof rdoc.domains).toBe('string');
      const rs = JSON.parse(await c.ok<string>('Vm.export_metadata', S({ id: running }))) as Record<string, unknown>;
      expect(typeof rs.domains).toBe('string');
      // Importing it elsewhere: `domains` is stored and ignored; the new VM is Halted.
      const copy = vmId('meta-c');
      await c.ok('VM.import_metadata', X({ metadata: JSON.stringify({ ...rdoc, vm: { ...(rdoc.vm as object), id: copy } }) }));
      expect((await stat(c, copy))[1]).toMatchObject({ power_state: 'Halted', domids: [] });
    });

    it('import of malformed JSON is Internal_error and changes nothing; existing id: xenopsd overwrites (queued), seed "Already_exists"', async () => {
      const id = await addStarted(c, XENOPSD, { name: 'before' });
      const doc = JSON.parse(await c.ok<string>('VM.export_metadata', X({ id }))) as { vm: Record<string, unknown> };
      const head = await c.ok<number>('UPDATES.last_id', X());
      const vms = await c.ok<Stat[]>('VM.list', X());
      for (const bad of ['{"vm": ', 'not json', '[1,2', '']) {
        expect(await c.fail('VM.import_metadata', X({ metadata: bad }))).toEqual(IE);
        expect(await c.fail('Vm.import_metadata', S({ config: bad }))).toEqual(IE);
      }
      // Well-formed JSON that is not a Metadata.t.
      expect(await c.fail('VM.import_metadata', X({ metadata: '{"vm": {"id": 3}}' }))).toEqual(IE);
      expect(await c.ok<number>('UPDATES.last_id', X())).toBe(head);
      expect(await c.ok<Stat[]>('VM.list', X())).toEqual(vms);

      expect(await c.fail('Vm.import_metadata', S({ config: JSON.stringify({ ...doc, vm: { ...doc.vm, name: 'seed-try' } }) }))).toBe('Already_exists');
      expect((await stat(c, id))[0].name).toBe('before');
      expect(await c.ok('VM.import_metadata', X({ metadata: JSON.stringify({ ...doc, vm: { ...doc.vm, name: 'after' } }) }))).toBe(id);
      const [cfg, st] = await stat(c, id);
      expect(cfg.name).toBe('after');
      // A running VM keeps running.
      expect(st.power_state).toBe('Running');
    });

    it('import_metadata_async returns a task whose result is the VM id; bad JSON is an error of the call and creates no task', async () => {
      const src = await XENOPSD.add(c, { name: 'async-src' });
      const doc = JSON.parse(await c.ok<string>('VM.export_metadata', X({ id: src }))) as { vm: Record<string, unknown> };
      const fresh = vmId('async');
      const t = await c.ok<string>('VM.import_metadata_async', X({ metadata: JSON.stringify({ ...doc, vm: { ...doc.vm, id: fresh } }) }));
      expect(t).toMatch(/^[1-9][0-9]*$/);
      await waitEnd(c, 'xenopsd', t);
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: t }))).state).toEqual(['Completed', { duration: expect.any(Number), result: fresh }]);
      expect((await stat(c, fresh))[0]).toMatchObject({ id: fresh, name: 'async-src' });
      // Over an existing VM: overwrites.
      const t2 = await c.ok<string>('VM.import_metadata_async', X({ metadata: JSON.stringify({ ...doc, vm: { ...doc.vm, name: 'async-2' } }) }));
      await waitEnd(c, 'xenopsd', t2);
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: t2 }))).state).toEqual(['Completed', { duration: expect.any(Number), result: src }]);
      expect((await stat(c, src))[0].name).toBe('async-2');

      const tasks = (await c.ok<XenopsdTask[]>('Task.list', X())).map((x) => x.id);
      const head = await c.ok<number>('UPDATES.last_id', X());
      expect(await c.fail('VM.import_metadata_async', X({ metadata: '{"vm": ' }))).toEqual(IE);
      expect((await c.ok<XenopsdTask[]>('Task.list', X())).map((x) => x.id)).toEqual(tasks);
      expect(await c.ok<number>('UPDATES.last_id', X())).toBe(head);
    });
  });

  it('200 VMs started and shut down in parallel (half seed, half xenopsd): every task completes, per-VM order kept', async () => {
    const N = 200;
    const t0 = Date.now();
    const vms = Array.from({ length: N }, (_, i) => ({ d: i % 2 === 0 ? XENOPSD : SEED, id: '' }));
    await Promise.all(vms.map(async (v) => (v.id = await v.d.add(c))));
    const lap = (what: string) => process.env.E2E_VERBOSE && process.stderr.write(`${store} scale: ${what} at ${Date.now() - t0} ms\n`);
    lap('added');
    const pairs = await Promise.all(
      vms.map(async (v) => {
        const start = await v.d.submit(c, v.id, { op: 'start' }, `scale-${v.id}`);
        const shutdown = await v.d.submit(c, v.id, { op: 'shutdown', timeout: 5 }, `scale-${v.id}`);
        return { ...v, start, shutdown };
      }),
    );
    lap('submitted');
    const ends = await Promise.all(
      pairs.map(async (p) => ({ ...p, s: await p.d.wait(c, p.start, 60_000), h: await p.d.wait(c, p.shutdown, 60_000) })),
    );
    for (const e of ends) {
      expect(Number(e.start)).toBeLessThan(Number(e.shutdown));
      expect(e.s, `start of ${e.id}`).toEqual(completed);
      expect(e.h, `shutdown of ${e.id}`).toEqual(completed);
    }
    lap('ended');
    // Had a shutdown run before its start, that VM would be left Paused/Running.
    const listed = new Map((await c.ok<Stat[]>('VM.list', X())).map(([v, s]) => [v.id as string, s]));
    for (const v of vms) expect(listed.get(v.id)).toMatchObject({ power_state: 'Halted', domids: [] });
    // Per-VM order, read from the log: the start had ended at the seq where the shutdown ended.
    const sample = [ends[0]!, ends[N - 1]!];
    const head = await c.ok<number>('UPDATES.last_id', X());
    for (const e of sample) {
      // Binary search for the first seq at which the shutdown task moved (progress or end);
      // at that seq its start had already ended.
      const moved = async (s: number) => {
        const t = await c.ok<XenopsdTask>('Task.stat', X({ id: e.shutdown, as_of: s }));
        return t.state[0] !== 'Pending' || t.state[1] !== 0;
      };
      let lo = Number(e.shutdown);
      let hi = head;
      expect(await moved(hi)).toBe(true);
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (await moved(mid)) hi = mid;
        else lo = mid + 1;
      }
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: e.start, as_of: lo }))).state[0], `start of ${e.id} at seq ${lo}`).toBe('Completed');
    }
    lap('order checked');
    if (process.env.E2E_VERBOSE) process.stderr.write(`${store}: 200 VMs in ${Date.now() - t0} ms\n`);
    // ~10 s on an idle 2-CPU machine; generous for loaded CI.
    expect(Date.now() - t0).toBeLessThan(75_000);
  }, 90_000);
});

/** Starts (and unpauses) an already added xenopsd VM. */
async function addStartedExisting(c: RpcClient, id: string): Promise<void> {
  expect(await XENOPSD.run(c, id, { op: 'start' })).toEqual(completed);
  expect(await XENOPSD.run(c, id, { op: 'unpause' })).toEqual(completed);
}

describe.each(['embedded', 'nats'] as const)('%s store, XML-RPC sample', (store) => {
  let c: RpcClient;
  beforeAll(async () => {
    c = (await startService(store)).client('xml');
  });

  it('low-level sequence, set_vcpus errors in both dialects, suspend/resume, run_script result', async () => {
    for (const d of [XENOPSD, SEED]) {
      const id = await d.add(c, { vcpu_max: 2, vcpus: 1 });
      for (const op of [{ op: 'create' }, { op: 'build' }, { op: 'create_device_model', saveState: false }, { op: 'unpause' }] as const) {
        expect(await d.run(c, id, op)).toEqual(completed);
      }
      expect(await power(c, id)).toBe('Running');
      expect(await d.run(c, id, { op: 'create' })).toEqual(failed(d.alreadyExists('domain', id)));
      expect(await d.run(c, id, { op: 'set_vcpus', n: 3 })).toEqual(failed(d.vcpusError(2)));
      expect(await d.run(c, id, { op: 'set_shadow_multiplier', m: xmlDouble(2.0) as unknown as number })).toEqual(completed);
      expect((await stat(c, id))[1].shadow_multiplier_target).toBe(2);
      expect(await d.run(c, id, { op: 'suspend', disk: ['VDI', 'sr/xml'] })).toEqual(completed);
      expect(await d.run(c, id, { op: 'resume', disk: ['VDI', 'sr/xml'] })).toEqual(completed);
      expect(await power(c, id)).toBe(d.startEnds);
      expect(await d.run(c, id, { op: 'shutdown', timeout: xmlDouble(5) as unknown as number })).toEqual(completed);
    }
    const id = await XENOPSD.add(c);
    const rs = await c.ok<string>('VM.run_script', X({ id, script: 's' }));
    await waitEnd(c, 'xenopsd', rs);
    expect((await c.ok<XenopsdTask>('Task.stat', X({ id: rs }))).state).toEqual(['Completed', { duration: expect.any(Number), result: { rc: 0, stdout: '', stderr: '' } }]);
    // The seed task's Failed text is JSON whatever the request's format.
    const p = await c.ok<string>('Vm.pause', S({ id }));
    expect(await waitEnd(c, 'seed', p)).toEqual(failed(dneDom(id)));
    const body = await rawXml(c, 'HOST.combine_cpu_policies', [{ debug_info: 'x', policy1: '0000000f-000000ff', policy2: '00000003' }]);
    expect(body).toContain('00000003-00000000');
  });
});
