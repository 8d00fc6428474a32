/**
 * Devices in VM operations (API.md §7.3 plug-devices / plug-pcis / teardown, §7.6, §8.1, §8.3):
 * start/resume/reboot plug VBDs ReadWrite group first then ReadOnly (disks added in both orders),
 * VIFs by position, PCIs serially by position; shutdown and suspend unplug; position clashes and
 * automatic numbering; 64 VBDs + 16 VIFs on one VM. Both stores, JSON-RPC v1. Issue 4.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X, type RpcClient } from '../support/rpc.js';
import { bps, completed, sleep, startService, stat, waitVm, type Service } from '../support/ops.js';
import {
  add,
  devList,
  devStat,
  expectPlugOrderingOk,
  MODULES,
  pciRec,
  pluggedNames,
  runT,
  snapshot,
  trigger,
  UNPLUGGED,
  vbdFull,
  vbdPlugged,
  vgpuFull,
  vifFull,
  vifPlugged,
  vusbRec,
  type DevId,
  type Module,
  type Pair,
} from '../support/devices.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll } from '../support/xenopsd.js';

afterAll(cleanupAll);

const failed = (error: unknown) => ({ state: 'Failed', error });
const newVm = async (c: RpcClient, tag = 'dev'): Promise<string> => c.ok<string>('VM.add', X({ vm: xenopsdVm(vmId(tag)) }));

/** Polls until every VBD/VIF/PCI of the VM shows the unplugged state (teardown may still be finishing). */
async function waitAllUnplugged(c: RpcClient, vm: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snap = await snapshot(c, vm);
    const bad = MODULES.flatMap((m) => snap[m].filter(([, st]) => JSON.stringify(st) !== JSON.stringify(UNPLUGGED[m])).map(([cfg]) => `${m} ${(cfg.id as DevId)[1]}`));
    if (bad.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still not unplugged: ${bad.join(', ')}`);
    await sleep(25);
  }
}

/** Device names of one Dynamic kind in the order UPDATES reports them (their last change). */
/**
 * The order devices were plugged in, from the audit log (GET /log): within one message events
 * keep their order, and how many messages an operation writes is not part of the contract.
 */
async function pluggedSince(svc: Service, vm: string, last: number): Promise<Array<[string, string]>> {
  const res = await fetch(`${svc.url()}/log?since=${last}&vm=${encodeURIComponent(vm)}`);
  const entries = (await res.text()).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; text: string });
  return entries
    .filter((e) => e.event === 'DevicePlugged')
    .map((e) => {
      const m = / (VBD|VIF|PCI) (\S+) plugged/.exec(e.text)!;
      return [m[1]![0] + m[1]!.slice(1).toLowerCase(), m[2]!] as [string, string];
    });
}
const orderOf = (ids: Array<[string, string]>, kind: string) => ids.filter(([k]) => k === kind).map(([, dev]) => dev);

const RW = { qos: ['Ionice', ['BestEffort', 'High']], backend: ['VDI', 'sr/rw'] };
const RO = { mode: 'ReadOnly', ty: 'CDROM', backend: ['Local', '/dev/sr0'] };

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  let svc: Service;
  let c: RpcClient;
  beforeAll(async () => {
    svc = await startService(store);
    c = svc.client();
  });

  /**
   * RO disks get names that sort first, so neither name order nor add order can pass the check
   * by accident.
   */
  describe.each(['ReadOnly added first', 'ReadWrite added first'] as const)('disks: %s', (order) => {
    let vm: string;
    const rwDisks = ['xvdc', 'xvdd', 'xvde'];
    const roDisks = ['xvda', 'xvdb'];
    const cfgOf = (dev: string) => (roDisks.includes(dev) ? vbdFull(vm, dev, RO) : vbdFull(vm, dev, RW));
    const plugged = (dev: string) => (roDisks.includes(dev) ? vbdPlugged(RO) : vbdPlugged(RW));
    // VIF name -> position; PCI name -> position (name order differs from position order).
    const vifs: Array<[string, number]> = [['eth0', 2], ['eth1', 0], ['eth2', 1], ['eth3', 7]];
    const pcis: Array<[string, number]> = [['pa', 2], ['pb', 0], ['pc', 1]];

    async function expectAllPlugged(): Promise<number> {
      const [, st] = await stat(c, vm);
      expect(st.domids).toHaveLength(1);
      const domid = st.domids[0]!;
      expect(await devList(c, 'VBD', vm)).toEqual([...roDisks, ...rwDisks].sort().map((d) => [cfgOf(d), plugged(d)]));
      expect(await devList(c, 'VIF', vm)).toEqual(vifs.map(([d, p]) => [vifFull(vm, d, { position: p }), vifPlugged(domid, p)]));
      expect(await devList(c, 'PCI', vm)).toEqual(pcis.map(([d, p]) => [pciRec(vm, d, p), { plugged: true }]));
      expect(await devList(c, 'VGPU', vm)).toEqual([[vgpuFull(vm, 'g0'), UNPLUGGED.VGPU]]);
      expect(await devList(c, 'VUSB', vm)).toEqual([[vusbRec(vm, 'u0'), UNPLUGGED.VUSB]]);
      await expectPlugOrderingOk(c, vm);
      return domid;
    }

    /** Plugs since `last`, in log order: every RW VBD before every RO VBD; VIFs and PCIs by position. */
    async function expectPlugOrderInUpdates(last: number): Promise<void> {
      const ids = await pluggedSince(svc, vm, last);
      const vbds = orderOf(ids, 'Vbd');
      expect(vbds.slice().sort()).toEqual([...roDisks, ...rwDisks].sort());
      expect(new Set(vbds.slice(0, rwDisks.length)), `VBD order ${vbds.join(',')}`).toEqual(new Set(rwDisks));
      expect(orderOf(ids, 'Vif')).toEqual(['eth1', 'eth2', 'eth0', 'eth3']);
      expect(orderOf(ids, 'Pci')).toEqual(['pb', 'pc', 'pa']);
    }

    beforeAll(async () => {
      vm = await newVm(c, 'order');
      const disks = order === 'ReadOnly added first' ? [...roDisks, ...rwDisks] : [...rwDisks, ...roDisks];
      for (const d of disks) await add(c, 'VBD', { id: [vm, d], ...(roDisks.includes(d) ? RO : RW) });
      for (const [d, p] of vifs) await add(c, 'VIF', { id: [vm, d], position: p });
      for (const [d, p] of pcis) await add(c, 'PCI', pciRec(vm, d, p));
      await add(c, 'VGPU', { id: [vm, 'g0'] });
      await add(c, 'VUSB', vusbRec(vm, 'u0'));
    });

    it('start plugs RW VBDs then RO, VIFs and PCIs by position; states plugged; shutdown unplugs', async () => {
      const last = await c.ok<number>('UPDATES.last_id', X());
      expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
      expect((await stat(c, vm))[1].power_state).toBe('Paused');
      await expectAllPlugged();
      await expectPlugOrderInUpdates(last);
      expect(await runT(c, 'VM.unpause', { id: vm })).toEqual(completed);
      expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
      expect((await stat(c, vm))[1].power_state).toBe('Halted');
      await waitAllUnplugged(c, vm, 0);
      // No domain: the check has nothing to look at.
      expect(await trigger(c, 'check-vbd-plug-ordering', [vm])).toMatchObject({ ok: false, error: ['Does_not_exist', ['domain', vm]] });
    });

    it('suspend unplugs, resume plugs again (new domid, same order); reboot replugs; clean shutdown unplugs', async () => {
      expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(completed);
      expect(await runT(c, 'VM.unpause', { id: vm })).toEqual(completed);
      const d1 = (await stat(c, vm))[1].domids[0]!;
      expect(await runT(c, 'VM.suspend', { id: vm, suspend_vdi: ['VDI', 'sr/suspend'] })).toEqual(completed);
      expect((await stat(c, vm))[1].power_state).toBe('Suspended');
      await waitAllUnplugged(c, vm, 0);

      let last = await c.ok<number>('UPDATES.last_id', X());
      expect(await runT(c, 'VM.resume', { id: vm, suspend_vdi: ['VDI', 'sr/suspend'] })).toEqual(completed);
      expect((await stat(c, vm))[1].power_state).toBe('Paused');
      const d2 = await expectAllPlugged();
      expect(d2).toBeGreaterThan(d1);
      await expectPlugOrderInUpdates(last);

      last = await c.ok<number>('UPDATES.last_id', X());
      expect(await runT(c, 'VM.reboot', { id: vm })).toEqual(completed);
      expect((await stat(c, vm))[1].power_state).toBe('Running');
      const d3 = await expectAllPlugged();
      expect(d3).toBeGreaterThan(d2);
      await expectPlugOrderInUpdates(last);

      expect(await runT(c, 'VM.shutdown', { id: vm, delay: 5 })).toEqual(completed);
      await waitAllUnplugged(c, vm, 0);
    });
  });

  it('check-vbd-plug-ordering detects a ReadOnly VBD plugged before a ReadWrite one (by hand)', async () => {
    const vm = await newVm(c, 'viol');
    await add(c, 'VBD', { id: [vm, 'cd'], ...RO });
    expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
    await expectPlugOrderingOk(c, vm);
    await add(c, 'VBD', { id: [vm, 'disk'], ...RW });
    expect(await runT(c, 'VBD.plug', { id: [vm, 'disk'] })).toEqual(completed);
    expect(await trigger(c, 'check-vbd-plug-ordering', [vm])).toMatchObject({
      ok: false,
      error: ['Internal_error', 'VBD plug ordering violated: cd before disk'],
    });
    // A new domain starts a new record.
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
    await expectPlugOrderingOk(c, vm);
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
  });

  describe('position clashes at start: the task fails Already_exists, the VM ends Halted with nothing plugged', () => {
    const cases: Array<[string, (vm: string) => Array<[Module, Record<string, unknown>]>, unknown]> = [
      [
        'two VBDs with disk number 3',
        (vm) => [
          ['VBD', { id: [vm, 'xvda'], position: ['Xen', 3, 0] }],
          ['VBD', { id: [vm, 'xvdb'], position: ['Xen', 3, 0] }],
          ['VBD', { id: [vm, 'xvdc'] }],
          ['VIF', { id: [vm, 'eth0'] }],
        ],
        ['Already_exists', ['vbd', '3']],
      ],
      [
        'two ReadOnly VBDs with disk number 0',
        (vm) => [
          ['VBD', { id: [vm, 'xvda'], position: ['Xen', 0, 0], mode: 'ReadOnly' }],
          ['VBD', { id: [vm, 'xvdb'], position: ['Xen', 0, 0], mode: 'ReadOnly' }],
          ['VBD', { id: [vm, 'xvdc'], position: ['Xen', 1, 0] }],
        ],
        ['Already_exists', ['vbd', '0']],
      ],
      [
        'two VIFs at position 2',
        (vm) => [
          ['VBD', { id: [vm, 'xvda'] }],
          ['VIF', { id: [vm, 'eth0'], position: 2 }],
          ['VIF', { id: [vm, 'eth1'], position: 2 }],
          ['VIF', { id: [vm, 'eth2'], position: 1 }],
        ],
        ['Already_exists', ['vif', '2']],
      ],
      [
        'two PCIs at position 1',
        (vm) => [
          ['VBD', { id: [vm, 'xvda'] }],
          ['VIF', { id: [vm, 'eth0'] }],
          ['PCI', pciRec(vm, 'p0', 1)],
          ['PCI', pciRec(vm, 'p1', 1, { address: { domain: 0, bus: 5, dev: 0, fn: 0 } })],
        ],
        ['Already_exists', ['pci', '1']],
      ],
    ];
    it.each(cases)('%s', async (_what, devices, error) => {
      const vm = await newVm(c, 'clash');
      for (const [m, rec] of devices(vm)) await add(c, m, rec);
      const configs = await snapshot(c, vm);
      expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(failed(error));
      await waitVm(c, vm, (s) => s?.[1].power_state === 'Halted' && s[1].domids.length === 0, 'Halted');
      await waitAllUnplugged(c, vm);
      // Configurations untouched.
      const after = await snapshot(c, vm);
      for (const m of MODULES) expect(after[m].map(([cfg]) => cfg), m).toEqual(configs[m].map(([cfg]) => cfg));
      // Another start fails the same way: nothing was left behind.
      expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(failed(error));
      await waitVm(c, vm, (s) => s?.[1].power_state === 'Halted', 'Halted');
      await waitAllUnplugged(c, vm);
    });

    async function clashSetup(): Promise<string> {
      const vm = await newVm(c, 'clash2');
      await add(c, 'VBD', { id: [vm, 'xvda'], position: ['Xen', 0, 0] });
      await add(c, 'VIF', { id: [vm, 'eth0'], position: 0 });
      expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
      await add(c, 'VIF', { id: [vm, 'eth1'], position: 0 });
      await add(c, 'VBD', { id: [vm, 'xvdb'], position: ['Xen', 0, 0] });
      return vm;
    }

    it('explicit VIF.plug / VBD.plug into a taken position fails Already_exists; the position frees on unplug', async () => {
      const vm = await clashSetup();
      expect(await runT(c, 'VIF.plug', { id: [vm, 'eth1'] })).toEqual(failed(['Already_exists', ['vif', '0']]));
      expect(await runT(c, 'VBD.plug', { id: [vm, 'xvdb'] })).toEqual(failed(['Already_exists', ['vbd', '0']]));
      expect(await pluggedNames(c, 'VIF', vm)).toEqual(['eth0']);
      expect(await pluggedNames(c, 'VBD', vm)).toEqual(['xvda']);
      expect((await stat(c, vm))[1].power_state).toBe('Paused');
      // Once the holder is unplugged the position is free.
      expect(await runT(c, 'VIF.unplug', { id: [vm, 'eth0'] })).toEqual(completed);
      expect(await runT(c, 'VIF.plug', { id: [vm, 'eth1'] })).toEqual(completed);
      expect(await pluggedNames(c, 'VIF', vm)).toEqual(['eth1']);
      expect(await runT(c, 'VBD.unplug', { id: [vm, 'xvda'], force: false })).toEqual(completed);
      expect(await runT(c, 'VBD.plug', { id: [vm, 'xvdb'] })).toEqual(completed);
      expect(await pluggedNames(c, 'VBD', vm)).toEqual(['xvdb']);
      expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    });

    // The set_active step runs before the clash is found; the refused plug must undo it.
    it('a refused plug (Already_exists) changes nothing: the device keeps the unplugged state {active:false, plugged:false}', async () => {
      const vm = await clashSetup();
      const before = await snapshot(c, vm);
      expect(await runT(c, 'VIF.plug', { id: [vm, 'eth1'] })).toEqual(failed(['Already_exists', ['vif', '0']]));
      expect(await runT(c, 'VBD.plug', { id: [vm, 'xvdb'] })).toEqual(failed(['Already_exists', ['vbd', '0']]));
      await sleep(200); // any state check has run
      expect((await devStat(c, 'VIF', [vm, 'eth1']))[1]).toEqual(UNPLUGGED.VIF);
      expect((await devStat(c, 'VBD', [vm, 'xvdb']))[1]).toEqual(UNPLUGGED.VBD);
      expect(await snapshot(c, vm)).toEqual(before);
    });
  });

  it('auto-numbering: VBDs without position take the smallest free disk numbers, avoiding explicit positions; stored config unchanged', async () => {
    const vm = await newVm(c, 'auto');
    // a (RW, auto), b (RO, auto), c (RW, explicit 1): a and b take 0 and 2 in any plug order.
    await add(c, 'VBD', { id: [vm, 'a'] });
    await add(c, 'VBD', { id: [vm, 'b'], mode: 'ReadOnly' });
    await add(c, 'VBD', { id: [vm, 'c'], position: ['Xen', 1, 0] });
    expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
    await expectPlugOrderingOk(c, vm);
    expect(await pluggedNames(c, 'VBD', vm)).toEqual(['a', 'b', 'c']);
    expect((await devStat(c, 'VBD', [vm, 'a']))[0]).toEqual(vbdFull(vm, 'a'));
    expect((await devStat(c, 'VBD', [vm, 'b']))[0]).toEqual(vbdFull(vm, 'b', { mode: 'ReadOnly' }));

    const probe = async (dev: string, n: number) => {
      await add(c, 'VBD', { id: [vm, dev], position: ['Xen', n, 0] });
      return runT(c, 'VBD.plug', { id: [vm, dev] });
    };
    // 0, 1 and 2 are taken, 3 is free.
    expect(await probe('x0', 0)).toEqual(failed(['Already_exists', ['vbd', '0']]));
    expect(await probe('x1', 1)).toEqual(failed(['Already_exists', ['vbd', '1']]));
    expect(await probe('x2', 2)).toEqual(failed(['Already_exists', ['vbd', '2']]));
    expect(await probe('x3', 3)).toEqual(completed);
    // A later auto-numbered plug takes the smallest free number: 4.
    await add(c, 'VBD', { id: [vm, 'later'] });
    expect(await runT(c, 'VBD.plug', { id: [vm, 'later'] })).toEqual(completed);
    expect(await probe('x4', 4)).toEqual(failed(['Already_exists', ['vbd', '4']]));
    expect((await devStat(c, 'VBD', [vm, 'later']))[0]).toEqual(vbdFull(vm, 'later'));
    // Unplugging frees its number: "a" (0) out, then the explicit 0 fits.
    expect(await runT(c, 'VBD.unplug', { id: [vm, 'a'], force: false })).toEqual(completed);
    expect(await runT(c, 'VBD.plug', { id: [vm, 'x0'] })).toEqual(completed);
    // ... and "a", auto again, now takes the smallest free number (5 is the first one free).
    expect(await runT(c, 'VBD.plug', { id: [vm, 'a'] })).toEqual(completed);
    expect(await probe('x5', 5)).toEqual(failed(['Already_exists', ['vbd', '5']]));
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    await waitAllUnplugged(c, vm, 0);
  });

  it('auto-numbering at start avoids explicit positions of VBDs plugged later in the same operation (RO explicit 0, RW auto)', async () => {
    const vm = await newVm(c, 'auto2');
    // The RW auto disk plugs first; it must not take 0, reserved by the RO disk plugged after it.
    await add(c, 'VBD', { id: [vm, 'ro'], mode: 'ReadOnly', position: ['Xen', 0, 0] });
    await add(c, 'VBD', { id: [vm, 'rw'] });
    expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
    expect(await pluggedNames(c, 'VBD', vm)).toEqual(['ro', 'rw']);
    await add(c, 'VBD', { id: [vm, 'x1'], position: ['Xen', 1, 0] });
    expect(await runT(c, 'VBD.plug', { id: [vm, 'x1'] })).toEqual(failed(['Already_exists', ['vbd', '1']]));
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
  });

  it('scale: 64 VBDs and 16 VIFs on one VM, started and shut down; all plugged, then all unplugged; plug ordering holds', async () => {
    const vm = await newVm(c, 'scale');
    const vbdNames = Array.from({ length: 64 }, (_, i) => `d${String(i).padStart(2, '0')}`);
    // Every third disk is ReadOnly; a few have explicit positions, the rest are auto-numbered.
    const vbdRec = (i: number, dev: string) => ({
      id: [vm, dev],
      ...(i % 3 === 0 ? { mode: 'ReadOnly' } : {}),
      ...(i % 8 === 5 ? { position: ['Xen', 100 + i, 0] } : {}),
      ...(i % 2 === 0 ? { backend: ['VDI', `sr/v${i}`] } : {}),
    });
    // Added in an interleaved order (reverse), in parallel batches.
    const order = vbdNames.map((d, i) => [i, d] as const).reverse();
    for (let i = 0; i < order.length; i += 16) await Promise.all(order.slice(i, i + 16).map(([n, d]) => add(c, 'VBD', vbdRec(n, d))));
    const vifPos = Array.from({ length: 16 }, (_, i) => (i * 7) % 16);
    await Promise.all(vifPos.map((p, i) => add(c, 'VIF', { id: [vm, `eth${String(i).padStart(2, '0')}`], position: p })));
    expect(await devList(c, 'VBD', vm)).toHaveLength(64);
    expect(await devList(c, 'VIF', vm)).toHaveLength(16);

    const last = await c.ok<number>('UPDATES.last_id', X());
    expect(await runT(c, 'VM.start', { id: vm, paused: false }, 60_000)).toEqual(completed);
    const domid = (await stat(c, vm))[1].domids[0]!;
    await expectPlugOrderingOk(c, vm);
    const vbds = await devList(c, 'VBD', vm);
    expect(vbds.map(([cfg]) => (cfg.id as DevId)[1])).toEqual(vbdNames);
    for (const [i, [cfg, st]] of vbds.entries()) {
      expect(cfg).toEqual(vbdFull(vm, vbdNames[i]!, vbdRec(i, vbdNames[i]!)));
      expect(st).toEqual(vbdPlugged({ backend: cfg.backend }));
    }
    const vifsNow = await devList(c, 'VIF', vm);
    expect(vifsNow.map(([cfg, st]) => st)).toEqual(vifsNow.map(([cfg]) => vifPlugged(domid, cfg.position as number)));
    const ids = await pluggedSince(svc, vm, last);
    const vbdOrder = orderOf(ids, 'Vbd');
    const rwCount = vbdNames.filter((_, i) => i % 3 !== 0).length;
    expect(new Set(vbdOrder.slice(0, rwCount))).toEqual(new Set(vbdNames.filter((_, i) => i % 3 !== 0)));
    const vifOrder = orderOf(ids, 'Vif').map((d) => vifsNow.find(([cfg]) => (cfg.id as DevId)[1] === d)![0].position);
    expect(vifOrder).toEqual([...Array(16).keys()]);

    expect(await runT(c, 'VM.shutdown', { id: vm }, 60_000)).toEqual(completed);
    expect((await stat(c, vm))[1].power_state).toBe('Halted');
    await waitAllUnplugged(c, vm, 0);
    expect(await c.ok('VM.remove', X({ id: vm }))).toBeNull();
    expect(await devList(c, 'VBD', vm)).toEqual([]);
    expect(await devList(c, 'VIF', vm)).toEqual([]);
  });

  it('VM.remove of a running VM with devices: Bad_power_state; of a Halted one: cascades (stat DNE)', async () => {
    const vm = await newVm(c, 'rm');
    await add(c, 'VBD', { id: [vm, 'xvda'] });
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    await add(c, 'PCI', pciRec(vm, 'p0', 0));
    expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    expect(await runT(c, 'VM.unpause', { id: vm })).toEqual(completed);
    expect(await c.fail('VM.remove', X({ id: vm }))).toEqual(bps('Running', 'Halted'));
    expect(await pluggedNames(c, 'VBD', vm)).toEqual(['xvda']);
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await c.ok('VM.remove', X({ id: vm }))).toBeNull();
    expect(await c.fail('VBD.stat', X({ id: [vm, 'xvda'] }))).toEqual(['Does_not_exist', ['VM', `${vm}/vbd.xvda`]]);
    expect(await c.fail('VIF.stat', X({ id: [vm, 'eth0'] }))).toEqual(['Does_not_exist', ['VM', `${vm}/vif.eth0`]]);
    expect(await c.fail('PCI.stat', X({ id: [vm, 'p0'] }))).toEqual(['Does_not_exist', ['PCI', `${vm}/pci.p0`]]);
    expect(await c.ok<Pair[]>('PCI.list', X({ id: vm }))).toEqual([]);
  });
});
