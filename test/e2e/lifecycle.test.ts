/**
 * End-to-end VM lifecycle against real xenopsd processes: every store (embedded; NATS with the
 * gateway and the agent as two processes) × codec (JSON-RPC v1, XML-RPC; plus JSON-RPC v2 calls)
 * × dialect (xenopsd, seed). Contract: API.md §1, §2, §5, §6, §7.1–§7.4, §10.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient, S, X, waitPower, waitTask, type Codec, type SeedTask, type XenopsdTask } from '../support/rpc.js';
import { seedVm, vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, spawnXenopsd, startNatsCluster } from '../support/xenopsd.js';
import { xmlDouble } from '../support/xmlrpc.js';

type VmState = { power_state: string; domids: number[] } & Record<string, unknown>;
type Stat = [Record<string, unknown>, VmState];

interface Service {
  client(codec?: Codec): RpcClient;
  socketClient(codec?: Codec): RpcClient;
}

async function startService(store: 'embedded' | 'nats'): Promise<Service> {
  if (store === 'embedded') return spawnXenopsd({ mode: 'embedded' });
  const cluster = await startNatsCluster();
  return { client: (c) => cluster.gateway.client(c), socketClient: (c) => cluster.gateway.socketClient(c) };
}

afterAll(cleanupAll);

const TASK_ID = /^[1-9][0-9]*$/;
const dne = (kind: string, key: string) => ['Does_not_exist', [kind, key]];

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  describe.each(['json1', 'xml'] as const)('%s codec', (codec) => {
    let svc: Service;
    let c: RpcClient;
    /** A float argument: XML needs an explicit <double> (30.0 is an int in JS). */
    const flt = (n: number): unknown => (codec === 'xml' ? xmlDouble(n) : n);

    beforeAll(async () => {
      svc = await startService(store);
      c = svc.client(codec);
    });

    async function addAndStart(dialect: 'xenopsd' | 'seed' = 'xenopsd'): Promise<string> {
      const id = vmId();
      if (dialect === 'xenopsd') {
        await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
        const t = await c.ok<string>('VM.start', X({ id, paused: false }));
        expect((await waitTask(c, t)).state[0]).toBe('Completed');
      } else {
        await c.ok('Vm.add', S({ t: seedVm(id) }));
        const t = await c.ok<string>('Vm.start', S({ id }));
        expect((await waitTask(c, t, { dialect: 'seed' })).result[0]).toBe('Completed');
      }
      return id;
    }

    // Must run first in this block: a fresh host gives the first domain domid 1 (§8.1).
    it('xenopsd dialect: the §10 worked example', async () => {
      const last = await c.ok<number>('UPDATES.last_id', X({}, 'demo'));
      expect(Number.isInteger(last)).toBe(true);

      const id = vmId('web01');
      expect(await c.ok('VM.add', X({ vm: xenopsdVm(id) }, 'demo'))).toBe(id);

      const start = await c.ok<string>('VM.start', X({ id, paused: false }, 'demo'));
      expect(start).toMatch(TASK_ID);
      expect(Number(start)).toBeGreaterThan(last);

      const task = await waitTask(c, start);
      expect(task).toEqual({
        id: start,
        dbg: 'demo',
        ctime: expect.any(Number),
        state: ['Completed', { duration: expect.any(Number) }],
        subtasks: {},
        debug_info: { cancel_points_seen: '4' },
        backtrace: '()',
        cancellable: true,
      });
      expect((task.state[1] as { duration: number }).duration).toBeGreaterThanOrEqual(0);

      let [cfg, st] = await c.ok<Stat>('VM.stat', X({ id }, 'demo'));
      expect(cfg.id).toBe(id);
      expect(st.power_state).toBe('Paused');
      expect(st.domids).toEqual([1]);

      const unpause = await c.ok<string>('VM.unpause', X({ id }, 'demo'));
      expect(Number(unpause)).toBeGreaterThan(Number(start));
      expect((await waitTask(c, unpause)).state[0]).toBe('Completed');
      [, st] = await c.ok<Stat>('VM.stat', X({ id }, 'demo'));
      expect(st.power_state).toBe('Running');
      expect(st.domids).toEqual([1]);

      expect(await c.ok('Task.destroy', X({ id: start }, 'demo'))).toBeNull();
      expect(await c.fail('Task.stat', X({ id: start }))).toEqual(dne('task', start));
      const ids = (await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id);
      expect(ids).not.toContain(start);
      expect(ids).toContain(unpause);

      // Removing a running VM fails (S/q: checked when it reaches the head of the queue).
      expect(await c.fail('VM.remove', X({ id }, 'demo'))).toEqual(['Bad_power_state', ['Running', 'Halted']]);

      const shutdown = await c.ok<string>('VM.shutdown', X({ id, delay: flt(30.0) }, 'demo'));
      expect(Number(shutdown)).toBeGreaterThan(Number(unpause));
      expect((await waitTask(c, shutdown)).state[0]).toBe('Completed');
      [, st] = await c.ok<Stat>('VM.stat', X({ id }));
      expect(st.power_state).toBe('Halted');
      expect(st.domids).toEqual([]);

      expect(await c.ok('VM.remove', X({ id }, 'demo'))).toBeNull();
      expect(await c.ok('VM.exists', X({ id }))).toBe(false);
      expect(await c.fail('VM.stat', X({ id }))).toEqual(dne('VM', `${id}/config`));
    });

    it('xenopsd dialect: VM.stat of an unknown VM is DNE(VM)', async () => {
      const id = vmId('ghost');
      expect(await c.fail('VM.stat', X({ id }))).toEqual(dne('VM', `${id}/config`));
      expect(await c.ok('VM.exists', X({ id }))).toBe(false);
    });

    it('xenopsd dialect: VM.start of an unknown VM is DNE(VM) and creates no task', async () => {
      const before = (await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id);
      const head = await c.ok<number>('UPDATES.last_id', X());
      const id = vmId('ghost');
      expect(await c.fail('VM.start', X({ id, paused: false }))).toEqual(dne('VM', `${id}/config`));
      expect(await c.fail('VM.unpause', X({ id }))).toEqual(dne('VM', `${id}/config`));
      const after = (await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id);
      expect(after).toEqual(before);
      expect(await c.ok<number>('UPDATES.last_id', X())).toBe(head);
    });

    it('xenopsd dialect: VM.add overwrites; VM.list is sorted by id', async () => {
      const stamp = vmId('').slice(1, 9);
      const ids = [`zz-${stamp}`, `AA-${stamp}`, `mm-${stamp}`, `aa-${stamp}`, `m-${stamp}`];
      for (const id of ids) expect(await c.ok('VM.add', X({ vm: xenopsdVm(id) }))).toBe(id);
      // xenopsd add of an existing id replaces the configuration.
      expect(await c.ok('VM.add', X({ vm: xenopsdVm(ids[0], { name: 'renamed' }) }))).toBe(ids[0]);
      const [cfg] = await c.ok<Stat>('VM.stat', X({ id: ids[0] }));
      expect(cfg.name).toBe('renamed');

      const listed = (await c.ok<Stat[]>('VM.list', X())).map(([v]) => v.id as string);
      const sorted = [...listed].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(listed).toEqual(sorted);
      const mine = listed.filter((id) => ids.includes(id));
      expect(mine).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      for (const id of ids) expect(await c.ok('VM.remove', X({ id }))).toBeNull();
    });

    it('xenopsd dialect: Task.list is ordered by numeric id', async () => {
      const id = vmId('tasks');
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      // Hard shutdown of a Halted VM is a no-op task; make tasks until the id gains a digit.
      const created: string[] = [];
      for (let i = 0; i < 400; i++) {
        created.push(await c.ok<string>('VM.shutdown', X({ id })));
        if (created.at(-1)!.length > created[0]!.length) break;
      }
      expect(created.at(-1)!.length).toBeGreaterThan(created[0]!.length);
      await waitTask(c, created.at(-1)!);
      const listed = (await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id);
      expect(listed.map(Number)).toEqual([...listed.map(Number)].sort((a, b) => a - b));
      const mine = listed.filter((t) => created.includes(t));
      expect(mine).toEqual(created);
      for (const t of created) {
        expect((await c.ok<XenopsdTask>('Task.stat', X({ id: t }))).state[0]).toBe('Completed');
        await c.ok('Task.destroy', X({ id: t }));
      }
      await c.ok('VM.remove', X({ id }));
    });

    it('xenopsd dialect: pause/unpause, and pause of a Halted VM fails DNE(dom) through the task', async () => {
      const id = await addAndStart();
      const st = async () => (await c.ok<Stat>('VM.stat', X({ id })))[1].power_state;
      expect(await st()).toBe('Paused');
      for (const [method, want] of [
        ['VM.unpause', 'Running'],
        ['VM.pause', 'Paused'],
        ['VM.unpause', 'Running'],
      ] as const) {
        const t = await c.ok<string>(method, X({ id }));
        expect((await waitTask(c, t)).state[0]).toBe('Completed');
        expect(await st()).toBe(want);
      }
      const sd = await c.ok<string>('VM.shutdown', X({ id }));
      expect((await waitTask(c, sd)).state[0]).toBe('Completed');
      expect(await st()).toBe('Halted');

      const p = await c.ok<string>('VM.pause', X({ id }));
      const failed = await waitTask(c, p);
      expect(failed.state).toEqual(['Failed', dne('domain', id)]);
      await c.ok('VM.remove', X({ id }));
    });

    it('power preconditions are checked when the operation runs and fail its task (§7.3)', async () => {
      const id = await addAndStart(); // Paused
      const again = await c.ok<string>('VM.start', X({ id, paused: false }));
      expect((await waitTask(c, again)).state).toEqual(['Failed', ['Bad_power_state', ['Paused', 'Halted']]]);
      expect(await c.fail('VM.remove', X({ id }))).toEqual(['Bad_power_state', ['Paused', 'Halted']]);
      expect((await c.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Paused');
      // Seed: the same failure as JSON text in the seed task.
      await waitTask(c, await c.ok<string>('VM.unpause', X({ id })));
      const seedAgain = await c.ok<string>('Vm.start', S({ id }));
      expect((await waitTask(c, seedAgain, { dialect: 'seed' })).result).toEqual(['Failed', '["Bad_power_state",["Running","Halted"]]']);
      // A hard shutdown is legal in any state, twice in a row too.
      for (let i = 0; i < 2; i++) expect((await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })))).state[0]).toBe('Completed');
      expect((await c.ok<Stat>('VM.stat', X({ id })))[1]).toMatchObject({ power_state: 'Halted', domids: [] });
      await c.ok('VM.remove', X({ id }));
    });

    it('xenopsd dialect: Task.cancel of a finished task is a no-op; DNE(task) for unknown ids', async () => {
      const id = vmId('cancel');
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      const t = await c.ok<string>('VM.start', X({ id, paused: false }));
      const done = await waitTask(c, t);
      expect(done.state[0]).toBe('Completed');
      expect(await c.ok('Task.cancel', X({ id: t }))).toBeNull();
      expect(await c.ok<XenopsdTask>('Task.stat', X({ id: t }))).toEqual(done);
      const [, st] = await c.ok<Stat>('VM.stat', X({ id }));
      expect(st.power_state).toBe('Paused');

      for (const m of ['Task.stat', 'Task.cancel', 'Task.destroy', 'TASK.stat']) {
        expect(await c.fail(m, X({ id: '987654321' }))).toEqual(dne('task', '987654321'));
      }
      expect(await c.fail('Task.stat', S({ id: '987654321' }))).toEqual(dne('task', '987654321'));
      await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })));
      await c.ok('VM.remove', X({ id }));
    });

    it('seed dialect: add twice, start ends Running, Task.stat shape, stat, shutdown, remove', async () => {
      const q = await c.ok<Record<string, unknown>>('Query.query', S());
      expect(q).toMatchObject({ name: 'xenops', vendor: 'xenops-ts', features: expect.arrayContaining(['persistent-tasks']) });
      expect(q.instance_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

      const id = vmId('seed');
      expect(await c.ok('Vm.add', S({ t: seedVm(id) }))).toBe(id);
      expect(await c.fail('Vm.add', S({ t: seedVm(id) }))).toBe('Already_exists');

      const start = await c.ok<string>('Vm.start', S({ id }));
      expect(start).toMatch(TASK_ID);
      const task = await waitTask(c, start, { dialect: 'seed' });
      expect(task).toEqual({ id: start, result: ['Completed', expect.any(Number)], subtasks: {} });

      const stat = await c.ok<Stat[]>('Vm.stat', S({ id }));
      expect(stat).toHaveLength(1);
      const [cfg, st] = stat[0]!;
      expect(cfg).toMatchObject({ id, name: 'seed01', transient: false, scheduler_params: { priority: { weight: 256, cap: 0 }, affinity: [] } });
      expect(Object.keys(cfg).sort()).toEqual(Object.keys(seedVm(id)).filter((k) => k !== 'machine_address_size').sort());
      expect(st.power_state).toBe('Running');
      expect(st.domids).toHaveLength(1);
      expect(Object.keys(st).sort()).toEqual(
        [
          'power_state',
          'domids',
          'consoles',
          'memory_target',
          'vcpu_target',
          'shadow_multiplier_target',
          'rtc_timeoffset',
          'uncooperative_balloon_driver',
          'guest_agent',
          'last_start_time',
        ].sort(),
      );

      // Seed Vm.remove is S/q: a power-state violation is a direct error of the call.
      expect(await c.fail('Vm.remove', S({ id }))).toEqual(['Bad_power_state', ['Running', 'Halted']]);

      const sd = await c.ok<string>('Vm.shutdown', S({ id, clean_shutdown_timeout: flt(5.0) }));
      expect((await waitTask(c, sd, { dialect: 'seed' })).result[0]).toBe('Completed');
      expect((await c.ok<Stat[]>('Vm.stat', S({ id })))[0]![1].power_state).toBe('Halted');
      expect(await c.ok('Vm.remove', S({ id }))).toBeNull();
      expect(await c.ok('Vm.stat', S({ id }))).toEqual([]);
    });

    it('seed dialect: Vm.stat of an unknown id is [] and Vm.start of one is DNE(VM)', async () => {
      const id = vmId('ghost');
      expect(await c.ok('Vm.stat', S({ id }))).toEqual([]);
      expect(await c.fail('Vm.start', S({ id }))).toEqual(dne('VM', `${id}/config`));
    });

    it('seed dialect: a failed task shows its error as compact JSON text', async () => {
      const id = vmId('seedfail');
      await c.ok('Vm.add', S({ t: seedVm(id) }));
      const t = await c.ok<string>('Vm.pause', S({ id }));
      const task = await waitTask(c, t, { dialect: 'seed' });
      expect(task).toEqual({ id: t, result: ['Failed', JSON.stringify(['Does_not_exist', ['domain', id]])], subtasks: {} });
      // The same task seen through the xenopsd dialect carries the error value itself.
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: t }))).state).toEqual(['Failed', dne('domain', id)]);
      await c.ok('Vm.remove', S({ id }));
    });

    it('cross-dialect visibility: a seed VM is listed in xenopsd and vice versa', async () => {
      const seedId = await addAndStart('seed');
      const modernId = vmId('modern');
      await c.ok('VM.add', X({ vm: xenopsdVm(modernId) }));

      const xlist = await c.ok<Stat[]>('VM.list', X());
      const fromSeed = xlist.find(([v]) => v.id === seedId);
      expect(fromSeed).toBeDefined();
      expect(fromSeed![0].scheduler_params).toEqual({ priority: [256, 0], affinity: [] });
      expect(fromSeed![0]).not.toHaveProperty('transient');
      expect(fromSeed![1].power_state).toBe('Running');

      const slist = await c.ok<Stat[]>('Vm.list', S());
      const fromModern = slist.find(([v]) => v.id === modernId);
      expect(fromModern).toBeDefined();
      expect(fromModern![0].scheduler_params).toEqual({ priority: { weight: 256, cap: 0 }, affinity: [] });
      expect(fromModern![0].transient).toBe(false);
      expect(fromModern![1].power_state).toBe('Halted');
      const sids = slist.map(([v]) => v.id as string);
      expect(sids).toEqual([...sids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

      // xenopsd-dialect operations on the seed VM.
      await waitTask(c, await c.ok<string>('VM.shutdown', X({ id: seedId })));
      await c.ok('VM.remove', X({ id: seedId }));
      await c.ok('Vm.remove', S({ id: modernId }));
    });

    it('dialect rule 3: a dbg key makes VM.start/VM.stat seed calls; VM.exists stays xenopsd; debug_info wins', async () => {
      const id = vmId('rule3');
      await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
      // VM.start with only dbg is seed Vm.start: the VM ends Running, and Task.stat with dbg is seed-shaped.
      const t = await c.ok<string>('VM.start', { dbg: 'r3', id });
      const task = await waitTask(c, t, { dialect: 'seed' });
      expect(task).toEqual({ id: t, result: ['Completed', expect.any(Number)], subtasks: {} });
      expect((await c.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Running');
      // VM.stat with dbg is seed Vm.stat: [] for an unknown VM, [[t, state]] otherwise.
      const ghost = vmId('ghost');
      expect(await c.ok('VM.stat', { dbg: 'r3', id: ghost })).toEqual([]);
      expect(await c.ok<Stat[]>('vm.stat', { DBG: 'r3', id })).toHaveLength(1);
      // Both keys: debug_info wins, so it is the xenopsd call.
      expect(await c.fail('VM.stat', { dbg: 'r3', debug_info: 'x', id: ghost })).toEqual(dne('VM', `${ghost}/config`));
      // VM.exists has no seed counterpart and stays xenopsd.
      expect(await c.ok('VM.exists', { dbg: 'r3', id: ghost })).toBe(false);
      // The debug string is recorded whichever key carried it.
      expect((await c.ok<XenopsdTask>('Task.stat', X({ id: t }))).dbg).toBe('r3');
      await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })));
      await c.ok('VM.remove', X({ id }));
    });

    it('the shared decoder: seed Vm.add accepts the xenopsd priority pair, VM.add the seed record', async () => {
      const a = vmId('dec');
      const b = vmId('dec');
      await c.ok('Vm.add', S({ t: seedVm(a, { scheduler_params: { priority: [7, 3], affinity: [[0, 1]] } }) }));
      await c.ok('VM.add', X({ vm: xenopsdVm(b, { scheduler_params: { priority: { weight: 9, cap: 4 }, affinity: [] } }) }));
      expect((await c.ok<Stat>('VM.stat', X({ id: a })))[0].scheduler_params).toEqual({ priority: [7, 3], affinity: [[0, 1]] });
      expect((await c.ok<Stat[]>('Vm.stat', S({ id: b })))[0]![0].scheduler_params).toEqual({ priority: { weight: 9, cap: 4 }, affinity: [] });
      // S/q removes leave no task behind (§7.2).
      const before = (await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id);
      await c.ok('VM.remove', X({ id: a }));
      await c.ok('Vm.remove', S({ id: b }));
      expect((await c.ok<XenopsdTask[]>('Task.list', X())).map((t) => t.id)).toEqual(before);
      expect(await c.fail('VM.remove', X({ id: a }))).toEqual(dne('VM', `${a}/config`));
      expect(await c.fail('Vm.remove', S({ id: b }))).toEqual(dne('VM', `${b}/config`));
    });

    it('value encoding round-trips (§3): escaping, unicode, 64-bit ints, options, variants, dicts', async () => {
      const id = vmId('enc');
      const vm = xenopsdVm(id, {
        name: 'a<b>&"c\' é ☃ \u{1F600}',
        ssidref: -5,
        xsdata: { 'vm-data/hostname': 'web&01', 'k<': '>v' },
        platformdata: { acpi: '1', 'viridian': 'true' },
        ty: ['HVM', { video: 'Standard_VGA', firmware: ['Uefi', { on_boot: 'Reset' }], serial: 'pty', shadow_multiplier: flt(1.5), timeoffset: '-3600' }],
        machine_address_size: 36,
        memory_static_max: 2 ** 40,
        memory_dynamic_max: 2 ** 33,
        memory_dynamic_min: 2 ** 31,
        scheduler_params: { priority: [256, 0], affinity: [[0, 1], [2]] },
        on_crash: ['Coredump', 'Shutdown'],
        generation_id: '0:0',
        has_vendor_device: true,
      });
      await c.ok('VM.add', X({ vm }));
      const [cfg] = await c.ok<Stat>('VM.stat', X({ id }));
      expect(cfg).toEqual({
        ...vm,
        ty: [
          'HVM',
          {
            hap: true,
            shadow_multiplier: 1.5,
            timeoffset: '-3600',
            video_mib: 4,
            video: 'Standard_VGA',
            acpi: true,
            serial: 'pty',
            pci_emulations: [],
            pci_passthrough: false,
            boot_order: '',
            qemu_disk_cmdline: false,
            qemu_stubdom: false,
            firmware: ['Uefi', { on_boot: 'Reset', backend: 'xapidb' }],
          },
        ],
        on_softreboot: ['Softreboot'],
      });
      // Starting it exercises the run-time state encoding.
      await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })));
      const [, st] = await c.ok<Stat>('VM.stat', X({ id }));
      expect(st).toMatchObject({
        power_state: 'Paused',
        memory_target: 2 ** 33,
        memory_actual: 2 ** 33,
        memory_limit: 2 ** 40,
        vcpu_target: 2,
        shadow_multiplier_target: 1.5,
        rtc_timeoffset: '-3600',
        hvm: true,
        domain_type: 'Domain_HVM',
        xsdata_state: { 'vm-data/hostname': 'web&01', 'k<': '>v' },
      });
      const domid = st.domids[0]!;
      expect(st.consoles).toEqual([
        { protocol: 'Rfb', port: 5900 + domid, path: '' },
        { protocol: 'Vt100', port: 9500 + domid, path: '' },
      ]);
      // The seed view of the same VM (§4.12).
      const [[scfg, sst]] = (await c.ok<Stat[]>('Vm.stat', S({ id }))) as [Stat];
      expect(scfg.ty).toEqual([
        'HVM',
        {
          hap: true,
          shadow_multiplier: 1.5,
          timeoffset: '-3600',
          video_mib: 4,
          video: 'Standard_VGA',
          acpi: true,
          serial: 'pty',
          pci_emulations: [],
          pci_passthrough: false,
          boot_order: '',
          qemu_disk_cmdline: false,
          qemu_stubdom: false,
        },
      ]);
      expect(scfg).not.toHaveProperty('generation_id');
      expect(scfg).not.toHaveProperty('has_vendor_device');
      expect(sst.consoles).toEqual([
        { protocol: 'Rfb', port: 5900 + domid },
        { protocol: 'Vt100', port: 9500 + domid },
      ]);
      await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })));
      await c.ok('VM.remove', X({ id }));
    });

    if (codec === 'json1') {
      it('JSON-RPC v2: success, DNE, named-object params, unknown method', async () => {
        const v2 = svc.client('json2');
        const q = await v2.named('query', X());
        expect(q.envelope).toEqual({ jsonrpc: '2.0', result: expect.objectContaining({ name: 'xenops' }), id: expect.any(Number) });

        const id = vmId('v2');
        const miss = await v2.named('VM.stat', X({ id }));
        expect(miss.ok).toBe(false);
        const err = (miss.envelope as { error: { code: number; message: string; data: unknown } }).error;
        expect(err.code).toBe(-32000);
        expect(typeof err.message).toBe('string');
        expect(err.message).not.toContain('\n');
        expect(err.data).toEqual(dne('VM', `${id}/config`));

        // v2 params may be an object (named form).
        const reply = await v2.raw(JSON.stringify({ jsonrpc: '2.0', method: 'VM.add', params: X({ vm: xenopsdVm(id) }), id: 'a' }));
        expect(JSON.parse(reply.body)).toEqual({ jsonrpc: '2.0', result: id, id: 'a' });
        const t = await v2.ok<string>('VM.start', X({ id, paused: false }));
        expect((await waitTask(v2, t)).state[0]).toBe('Completed');
        expect((await v2.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Paused');

        const unk = await v2.named('VM.no_such_call', X());
        expect((unk.envelope as { error: { code: number; data: unknown } }).error).toMatchObject({
          code: -32601,
          data: ['Unimplemented', 'VM.no_such_call'],
        });
        await waitTask(v2, await v2.ok<string>('VM.shutdown', X({ id })));
        await v2.ok('VM.remove', X({ id }));
      });

      it('positional arguments and the Unix socket', async () => {
        const id = vmId('pos');
        await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
        const stat = await c.call('VM.stat', ['positional-dbg', id]);
        expect(stat.ok, JSON.stringify(stat)).toBe(true);
        expect(stat.ok && (stat.value as Stat)[0].id).toBe(id);
        // Positional form in XML-RPC too: the debug string, then the arguments in table order.
        const xs = await svc.client('xml').call('VM.stat', ['positional-dbg', id]);
        expect(xs.ok && (xs.value as Stat)[0].id).toBe(id);

        for (const codec2 of ['json1', 'xml'] as const) {
          const u = svc.socketClient(codec2);
          expect(await u.ok('query', X())).toMatchObject({ name: 'xenops' });
          expect((await u.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Halted');
        }
        await c.ok('VM.remove', X({ id }));
      });

      it('per-VM FIFO and parallelism: 50 VMs started and unpaused concurrently', async () => {
        const N = 50;
        const ids = Array.from({ length: N }, () => vmId('fifo'));
        const t0 = Date.now();
        const pairs = await Promise.all(
          ids.map(async (id) => {
            await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
            // Both queued back to back: the unpause arrives while the start is queued or running.
            const start = await c.ok<string>('VM.start', X({ id, paused: false }, `fifo-${id}`));
            const unpause = await c.ok<string>('VM.unpause', X({ id }, `fifo-${id}`));
            return { id, start, unpause };
          }),
        );
        const results = await Promise.all(
          pairs.map(async (p) => ({ ...p, s: await waitTask(c, p.start, { timeoutMs: 60_000 }), u: await waitTask(c, p.unpause, { timeoutMs: 60_000 }) })),
        );
        for (const r of results) {
          expect(Number(r.start)).toBeLessThan(Number(r.unpause));
          expect(r.s.state[0], `start task of ${r.id}`).toBe('Completed');
          expect(r.u.state[0], `unpause task of ${r.id}`).toBe('Completed');
          // FIFO: had the unpause run before the start finished, the VM would be left Paused.
          expect(r.s.ctime).toBeLessThanOrEqual(r.u.ctime);
        }
        const listed = new Map((await c.ok<Stat[]>('VM.list', X())).map(([v, s]) => [v.id as string, s]));
        for (const id of ids) expect(listed.get(id)?.power_state, id).toBe('Running');
        const domids = ids.map((id) => listed.get(id)!.domids[0]);
        expect(new Set(domids).size).toBe(N);
        expect(Date.now() - t0).toBeLessThan(60_000);
        await Promise.all(
          ids.map(async (id) => {
            await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })), { timeoutMs: 60_000 });
            await c.ok('VM.remove', X({ id }));
          }),
        );
      }, 120_000);
    }
  });
});

describe.each(['embedded', 'nats'] as const)('%s store, one worker slot (--pool-size 1)', (store) => {
  it('Task.cancel of queued tasks: each ends Failed ["Cancelled", id] with its VM Halted, or Completed if the cancel came too late', async () => {
    let c: RpcClient;
    if (store === 'embedded') c = (await spawnXenopsd({ mode: 'embedded', extraArgs: ['--pool-size', '1'] })).client();
    else c = (await startNatsCluster({ agentArgs: ['--pool-size', '1'] })).client();
    const ids = Array.from({ length: 60 }, () => vmId('cancel'));
    await Promise.all(ids.map((id) => c.ok('VM.add', X({ vm: xenopsdVm(id) }))));
    const started = await Promise.all(
      ids.map(async (id, i) => {
        // A delay queued ahead on the same VM (one worker slot for all) keeps the start waiting in
        // the VM's FIFO, so the cancel finds it queued.
        if (i % 2 === 1) await c.ok<string>('VM.delay', X({ id, delay: 0.2 }));
        const t = await c.ok<string>('VM.start', X({ id, paused: false }));
        if (i % 2 === 1) expect(await c.ok('Task.cancel', X({ id: t }))).toBeNull();
        return { id, t, cancelled: i % 2 === 1 };
      }),
    );
    let nCancelled = 0;
    for (const { id, t, cancelled } of started) {
      const task = await waitTask(c, t, { timeoutMs: 60_000 });
      if (!cancelled) {
        expect(task.state[0]).toBe('Completed');
        continue;
      }
      if (task.state[0] === 'Failed') {
        nCancelled++;
        expect(task.state[1]).toEqual(['Cancelled', t]);
        await waitPower(c, id, 'Halted');
      } else {
        expect(task.state[0]).toBe('Completed');
        expect((await c.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Paused');
      }
    }
    // With delays ahead of them and one worker slot, cancels must hit queued tasks.
    expect(nCancelled).toBeGreaterThan(0);
    // Every VM is usable afterwards.
    for (const { id } of started) expect((await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })))).state[0]).toBe('Completed');
  }, 120_000);
});

describe('NATS: several gateways on one cluster (§7.11)', () => {
  it('a second gateway with the same host id serves the same view and drives the same agent', async () => {
    const cluster = await startNatsCluster();
    const gw2 = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: cluster.prefix, hostId: cluster.hostId });
    const c1 = cluster.client();
    const c2 = gw2.client('xml');
    const id = vmId('multi');
    await c1.ok('VM.add', X({ vm: xenopsdVm(id) }));
    const deadline = Date.now() + 10_000;
    while (!(await c2.ok<boolean>('VM.exists', X({ id })))) {
      if (Date.now() > deadline) throw new Error('the second gateway never saw the VM');
      await new Promise((r) => setTimeout(r, 25));
    }
    const t = await c2.ok<string>('VM.start', X({ id, paused: false }));
    expect((await waitTask(c2, t)).state[0]).toBe('Completed');
    expect((await waitTask(c1, t)).state[0]).toBe('Completed');
    await waitPower(c1, id, 'Paused');
  });

  // VM.add is synchronous and never waits for a queue or an agent (§5.2, §7.2).
  it('VM.add and seed Vm.add through a gateway whose host has no agent succeed', async () => {
    const cluster = await startNatsCluster();
    const lonely = `lonely-${vmId('').slice(1, 9)}`;
    const gw = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: cluster.prefix, hostId: lonely });
    const c = gw.client();
    const a = vmId('noagent');
    const b = vmId('noagent');
    expect(await c.named('VM.add', X({ vm: xenopsdVm(a) }))).toMatchObject({ ok: true, value: a });
    expect(await c.named('Vm.add', S({ t: seedVm(b) }))).toMatchObject({ ok: true, value: b });
  });

  // A T call only checks existence synchronously (§5); the *task* fails "no agent for host" (§7.11).
  it('VM.start through a gateway whose host has no agent returns a task that fails "no agent for host"', async () => {
    const cluster = await startNatsCluster();
    const lonely = `lonely-${vmId('').slice(1, 9)}`;
    const gw = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: cluster.prefix, hostId: lonely });
    const c = gw.client();
    const id = vmId('noagent');
    await cluster.client().ok('VM.add', X({ vm: xenopsdVm(id) }));
    const deadline = Date.now() + 10_000;
    while (!(await c.ok<boolean>('VM.exists', X({ id })))) {
      if (Date.now() > deadline) throw new Error('the lonely gateway never saw the VM');
      await new Promise((r) => setTimeout(r, 25));
    }
    const out = await c.named('VM.start', X({ id, paused: false }));
    expect(out.ok, `VM.start answered ${JSON.stringify(out)}`).toBe(true);
    const task = await waitTask(c, out.ok ? (out.value as string) : '0');
    expect(task.state).toEqual(['Failed', ['Internal_error', `no agent for host ${lonely}`]]);
    expect((await c.ok<Stat>('VM.stat', X({ id })))[1].power_state).toBe('Halted');
  });
});
