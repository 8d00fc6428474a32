/**
 * Devices in whole-VM metadata (API.md §4.8, §4.12, §7.9): `VM.export_metadata` carries every
 * device list in name order; `VM.import_metadata` into a service of the other store round-trips
 * the VM and its devices; an import that would delete a plugged device fails Device_is_connected
 * and changes nothing; `hd<x>` VBDs become `xvd<x>`; seed `Vm.export_metadata` has the seed shapes.
 * Issue 4.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S, X, type RpcClient } from '../support/rpc.js';
import { completed, startService, stat, waitEnd, type Service, type Store } from '../support/ops.js';
import {
  add,
  devList,
  MODULES,
  pciRec,
  runT,
  snapshot,
  UNPLUGGED,
  vbdFull,
  vbdPlugged,
  vifFull,
  vusbRec,
  type DevId,
  type Module,
} from '../support/devices.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll } from '../support/xenopsd.js';

afterAll(cleanupAll);

const failed = (error: unknown) => ({ state: 'Failed', error });
type Meta = Record<string, unknown> & { vm: Record<string, unknown>; vbds: Record<string, unknown>[]; vifs: Record<string, unknown>[]; pcis: Record<string, unknown>[] };
const LIST_KEY: Record<Module, string> = { VBD: 'vbds', VIF: 'vifs', PCI: 'pcis', VGPU: 'vgpus', VUSB: 'vusbs' };

const services = {} as Record<Store, Service>;
beforeAll(async () => {
  const [e, n] = await Promise.all([startService('embedded'), startService('nats')]);
  services.embedded = e;
  services.nats = n;
});

/** A VM with one or more devices of every kind, added out of name order. */
async function populate(c: RpcClient, vm: string): Promise<void> {
  await c.ok('VM.add', X({ vm: xenopsdVm(vm) }));
  await add(c, 'VBD', { id: [vm, 'xvdb'], mode: 'ReadOnly', ty: 'CDROM', backend: ['Local', '/dev/sr0'], qos: ['Ionice', 'Idle'] });
  await add(c, 'VBD', { id: [vm, 'xvda'], position: ['Xen', 0, 0], backend: ['VDI', 'sr/a'], qos: ['Ionice', ['BestEffort', 'High']] });
  await add(c, 'VIF', {
    id: [vm, 'eth1'],
    position: 1,
    mac: 'aa:bb:cc:dd:ee:01',
    rate: [100, 20],
    locking_mode: ['Locked', { ipv4: ['10.0.0.2'], ipv6: [] }],
    ipv4_configuration: ['Static4', [['10.0.0.2/24'], ['10.0.0.1']]],
    pvs_proxy: ['site', [{ addresses: ['1.1.1.1'], first_port: 1, last_port: 2 }], 'eth1'],
    trunks: [7],
  });
  await add(c, 'VIF', { id: [vm, 'eth0'], ipv4_configuration: ['Static4', [['10.0.0.3/24'], []]] });
  await add(c, 'PCI', pciRec(vm, 'p1', 1, { msitranslate: true }));
  await add(c, 'PCI', pciRec(vm, 'p0', 0));
  await add(c, 'VGPU', { id: [vm, 'g0'], implementation: ['Nvidia', { type_id: 't' }] });
  await add(c, 'VUSB', vusbRec(vm, 'u0'));
}

const exportMeta = async (c: RpcClient, vm: string): Promise<Meta> => JSON.parse(await c.ok<string>('VM.export_metadata', X({ id: vm }))) as Meta;

describe.each(['embedded', 'nats'] as const)('exported from the %s store', (from) => {
  const to: Store = from === 'embedded' ? 'nats' : 'embedded';
  let src: RpcClient;
  let dst: RpcClient;
  beforeAll(() => {
    src = services[from].client();
    dst = services[to].client();
  });

  it(`VM.export_metadata lists every device in name order; import into the ${to} store round-trips VM and devices`, async () => {
    const vm = vmId('meta');
    await populate(src, vm);
    expect(await runT(src, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    const meta = await exportMeta(src, vm);
    expect(Object.keys(meta).sort()).toEqual(['domains', 'pcis', 'vbds', 'vgpus', 'vifs', 'vm', 'vusbs']);
    expect(typeof meta.domains).toBe('string');
    const [vmCfg] = await stat(src, vm);
    expect(meta.vm).toEqual(vmCfg);
    const srcLists = await snapshot(src, vm);
    for (const m of MODULES) expect(meta[LIST_KEY[m]], m).toEqual(srcLists[m].map(([cfg]) => cfg));
    expect((meta.vbds as Array<{ id: DevId }>).map((v) => v.id[1])).toEqual(['xvda', 'xvdb']);
    expect((meta.vifs as Array<{ id: DevId }>).map((v) => v.id[1])).toEqual(['eth0', 'eth1']);
    expect((meta.pcis as Array<{ id: DevId }>).map((v) => v.id[1])).toEqual(['p0', 'p1']);

    // Import into the other store: same VM id, fresh there.
    expect(await dst.ok('VM.import_metadata', X({ metadata: JSON.stringify(meta) }))).toBe(vm);
    const [dstCfg, dstState] = await stat(dst, vm);
    expect(dstCfg).toEqual(vmCfg);
    expect(dstState.power_state).toBe('Halted');
    for (const m of MODULES) {
      expect(await devList(dst, m, vm), m).toEqual(srcLists[m].map(([cfg]) => [cfg, UNPLUGGED[m]]));
    }
    // The imported VM starts with its devices.
    expect(await runT(dst, 'VM.start', { id: vm, paused: true })).toEqual(completed);
    expect((await devList(dst, 'VBD', vm)).map(([, st]) => st)).toEqual([
      vbdPlugged({ backend: ['VDI', 'sr/a'], qos: ['Ionice', ['BestEffort', 'High']] }),
      vbdPlugged({ backend: ['Local', '/dev/sr0'], qos: ['Ionice', 'Idle'] }),
    ]);
    expect(await runT(dst, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await runT(src, 'VM.shutdown', { id: vm })).toEqual(completed);
    // Halted: no domains key.
    expect(Object.keys(await exportMeta(src, vm))).not.toContain('domains');
  });

  it('import under another VM id re-keys the devices; hd<x> VBDs become xvd<x>', async () => {
    const vm = vmId('meta-src');
    await populate(src, vm);
    const meta = await exportMeta(src, vm);
    const fresh = vmId('meta-new');
    const doc = {
      ...meta,
      vm: { ...meta.vm, id: fresh },
      vbds: [...meta.vbds, { id: [vm, 'hdc'], mode: 'ReadOnly' }, { id: ['some-other-vm', 'hdd'] }],
    };
    expect(await dst.ok('VM.import_metadata', X({ metadata: JSON.stringify(doc) }))).toBe(fresh);
    expect((await devList(dst, 'VBD', fresh)).map(([cfg]) => cfg.id)).toEqual([
      [fresh, 'xvda'],
      [fresh, 'xvdb'],
      [fresh, 'xvdc'],
      [fresh, 'xvdd'],
    ]);
    expect((await devList(dst, 'VBD', fresh))[2]).toEqual([vbdFull(fresh, 'xvdc', { mode: 'ReadOnly' }), UNPLUGGED.VBD]);
    for (const m of MODULES) {
      for (const [cfg] of await devList(dst, m, fresh)) expect((cfg.id as DevId)[0], m).toBe(fresh);
    }
    expect(await devList(dst, 'VBD', vm)).toEqual([]);
  });

  it('import into an existing VM: absent devices are deleted; deleting a plugged one fails Device_is_connected and changes nothing', async () => {
    const vm = vmId('meta-del');
    await populate(src, vm);
    expect(await runT(src, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    const meta = await exportMeta(src, vm);
    const before = await snapshot(src, vm);
    const [cfgBefore] = await stat(src, vm);
    const renamed = { ...meta.vm, name: 'renamed' };
    // Drops the plugged xvdb, and changes the name: nothing of it may land.
    const dropPlugged = { ...meta, vm: renamed, vbds: meta.vbds.filter((v) => (v.id as DevId)[1] !== 'xvdb') };
    expect(await src.fail('VM.import_metadata', X({ metadata: JSON.stringify(dropPlugged) }))).toEqual('Device_is_connected');
    const task = await src.ok<string>('VM.import_metadata_async', X({ metadata: JSON.stringify({ ...dropPlugged, vifs: [] }) }));
    expect(await waitEnd(src, 'xenopsd', task)).toEqual(failed('Device_is_connected'));
    expect(await snapshot(src, vm)).toEqual(before);
    expect((await stat(src, vm))[0]).toEqual(cfgBefore);
    expect((await stat(src, vm))[1].power_state).toBe('Paused');

    // VGPUs and VUSBs are never plugged: dropping them is fine while running; the rest keeps running.
    const dropUnplugged = { ...meta, vm: renamed, vgpus: [], vusbs: [] };
    expect(await src.ok('VM.import_metadata', X({ metadata: JSON.stringify(dropUnplugged) }))).toBe(vm);
    expect((await stat(src, vm))[0].name).toBe('renamed');
    expect((await stat(src, vm))[1].power_state).toBe('Paused');
    expect(await devList(src, 'VGPU', vm)).toEqual([]);
    expect(await devList(src, 'VUSB', vm)).toEqual([]);
    expect(await devList(src, 'VBD', vm)).toEqual(before.VBD);

    // Halted: absent devices are deleted, present ones overwritten.
    expect(await runT(src, 'VM.shutdown', { id: vm })).toEqual(completed);
    const xvda = meta.vbds.find((v) => (v.id as DevId)[1] === 'xvda')!;
    const only = { vm: meta.vm, vbds: [{ ...xvda, qos: ['Ionice', ['RealTime', 'Lowest']] }], vifs: [], pcis: [] };
    expect(await src.ok('VM.import_metadata', X({ metadata: JSON.stringify(only) }))).toBe(vm);
    expect(await devList(src, 'VBD', vm)).toEqual([[{ ...xvda, qos: ['Ionice', ['RealTime', 'Lowest']] }, UNPLUGGED.VBD]]);
    for (const m of ['VIF', 'PCI', 'VGPU', 'VUSB'] as const) expect(await devList(src, m, vm), m).toEqual([]);
  });

  it(`seed Vm.export_metadata has the seed shapes; imported into the ${to} store through VM.import_metadata`, async () => {
    const vm = vmId('meta-seed');
    await populate(src, vm);
    await add(src, 'VBD', { id: [vm, 'xvdc'], position: ['Xen', 5, 0] });
    await add(src, 'VIF', { id: [vm, 'eth2'], position: 2, backend: ['Remote', ['vm-x', 'sw0']] });
    const text = await src.ok<string>('Vm.export_metadata', S({ id: vm }));
    const meta = JSON.parse(text) as Meta;
    expect(Object.keys(meta).sort()).toEqual(['pcis', 'vbds', 'vifs', 'vm']);
    expect(meta.vm).toMatchObject({ id: vm, transient: false, scheduler_params: { priority: { weight: 256, cap: 0 }, affinity: [] } });
    expect(meta.vm).not.toHaveProperty('on_softreboot');
    expect(meta.vbds).toEqual([
      { id: [vm, 'xvda'], position: 0, mode: 'ReadWrite', backend: ['VDI', 'sr/a'], ty: 'Disk', unpluggable: true, extra_backend_keys: {}, extra_private_keys: {}, qos: ['Ionice', ['BestEffort', 'High']] },
      { id: [vm, 'xvdb'], mode: 'ReadOnly', backend: ['Local', '/dev/sr0'], ty: 'CDROM', unpluggable: true, extra_backend_keys: {}, extra_private_keys: {}, qos: ['Ionice', 'Idle'] },
      { id: [vm, 'xvdc'], position: 5, mode: 'ReadWrite', ty: 'Disk', unpluggable: true, extra_backend_keys: {}, extra_private_keys: {} },
    ]);
    expect(meta.vifs).toEqual([
      { id: [vm, 'eth0'], position: 0, mac: 'fe:ff:ff:ff:ff:ff', carrier: true, mtu: 1500, backend: ['Local', 'xenbr0'], other_config: {}, extra_private_keys: {} },
      {
        id: [vm, 'eth1'],
        position: 1,
        mac: 'aa:bb:cc:dd:ee:01',
        carrier: true,
        mtu: 1500,
        rate: { kbytes_per_sec: 100, timeslice_us: 20 },
        backend: ['Local', 'xenbr0'],
        other_config: {},
        extra_private_keys: {},
      },
      { id: [vm, 'eth2'], position: 2, mac: 'fe:ff:ff:ff:ff:ff', carrier: true, mtu: 1500, backend: ['Remote', 'sw0'], other_config: {}, extra_private_keys: {} },
    ]);
    expect(meta.pcis).toEqual([
      { id: [vm, 'p0'], position: 0, domain: 0, bus: 3, dev: 0, fn: 0 },
      { id: [vm, 'p1'], position: 1, domain: 0, bus: 3, dev: 1, fn: 0, msitranslate: true },
    ]);

    // Seed-shaped metadata through the xenopsd import of the other store: shared decoder (§4.12).
    expect(await dst.ok('VM.import_metadata', X({ metadata: text }))).toBe(vm);
    expect((await devList(dst, 'VBD', vm)).map(([cfg]) => cfg.position)).toEqual([['Ide', 0, 0], undefined, ['Xen', 5, 0]]);
    const vifs = await devList(dst, 'VIF', vm);
    expect(vifs.map(([cfg]) => cfg)).toEqual([
      vifFull(vm, 'eth0'),
      vifFull(vm, 'eth1', { position: 1, mac: 'aa:bb:cc:dd:ee:01', rate: [100, 20] }),
      vifFull(vm, 'eth2', { position: 2, backend: ['Remote', ['', 'sw0']] }),
    ]);
    expect(await devList(dst, 'PCI', vm)).toEqual([
      [pciRec(vm, 'p0', 0), UNPLUGGED.PCI],
      [pciRec(vm, 'p1', 1, { msitranslate: true }), UNPLUGGED.PCI],
    ]);
    expect(await devList(dst, 'VGPU', vm)).toEqual([]);
    expect(await devList(dst, 'VUSB', vm)).toEqual([]);
    expect((await stat(dst, vm))[0]).toMatchObject({ id: vm, on_softreboot: ['Softreboot'] });
  });
});

describe('malformed devices in import metadata are refused and change nothing', () => {
  let c: RpcClient;
  beforeAll(() => {
    c = services.embedded.client();
  });

  // [what, mutation, message]: each refused with a clear error that changes nothing.
  const cases: Array<[string, (m: Meta, vm: string) => Meta, RegExp]> = [
    ['VBD mode "Sideways"', (m, vm) => ({ ...m, vbds: [{ id: [vm, 'xvda'], mode: 'Sideways' }] }), /^Type error at metadata\.vbds/],
    ['VBD negative position', (m, vm) => ({ ...m, vbds: [{ id: [vm, 'xvda'], position: ['Xen', -1, 0] }] }), /^Integer out of range at metadata\.vbds/],
    ['VBD device name ""', (m, vm) => ({ ...m, vbds: [{ id: [vm, ''] }] }), /^invalid id$/],
    ['VBD without id', (m) => ({ ...m, vbds: [{ mode: 'ReadOnly' }] }), /^No value found for key 'id' in Vbd\.t/],
    ['VIF locking_mode unknown', (m, vm) => ({ ...m, vifs: [{ id: [vm, 'eth0'], locking_mode: 'Sideways' }] }), /^Type error at metadata\.vifs/],
    // The import path makes the same checks as VIF.add / PCI.add.
    ['VIF mac "zz"', (m, vm) => ({ ...m, vifs: [{ id: [vm, 'eth0'], mac: 'zz' }] }), /mac/],
    ['VIF negative position', (m, vm) => ({ ...m, vifs: [{ id: [vm, 'eth0'], position: -3 }] }), /^Integer out of range at metadata\.vifs/],
    ['PCI negative position', (m, vm) => ({ ...m, pcis: [pciRec(vm, 'p0', -1)] }), /^Integer out of range at metadata\.pcis/],
  ];
  for (const [what, mutate, message] of cases) {
    it(what, async () => {
      const vm = vmId('meta-bad');
      await populate(c, vm);
      const meta = await exportMeta(c, vm);
      const before = await snapshot(c, vm);
      const o = await c.named('VM.import_metadata', X({ metadata: JSON.stringify(mutate(meta, vm)) }));
      expect(o.ok ? o.value : o.error).toEqual(['Internal_error', expect.stringMatching(message)]);
      expect(await snapshot(c, vm)).toEqual(before);
      // A fresh id: refused too, and no VM is created.
      const fresh = vmId('meta-bad-new');
      const o2 = await c.named('VM.import_metadata', X({ metadata: JSON.stringify(mutate({ ...meta, vm: { ...meta.vm, id: fresh } }, fresh)) }));
      expect(o2.ok ? o2.value : o2.error).toEqual(['Internal_error', expect.stringMatching(message)]);
      expect(await c.ok('VM.exists', X({ id: fresh }))).toBe(false);
    });
  }

  it('sanity: the unmodified document imports and changes nothing', async () => {
    const vm = vmId('meta-ok');
    await populate(c, vm);
    const before = await snapshot(c, vm);
    expect(await c.ok('VM.import_metadata', X({ metadata: JSON.stringify(await exportMeta(c, vm)) }))).toBe(vm);
    expect(await snapshot(c, vm)).toEqual(before);
  });
});
