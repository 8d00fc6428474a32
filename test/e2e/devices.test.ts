/**
 * Device calls of API.md §5.2 (VBD, VIF, PCI, VGPU, VUSB) with the wire shapes of §4.4–§4.7, the
 * errors of §6.1–§6.3 and the rules of §7.6, over RPC against real xenopsd processes on both
 * stores (embedded; NATS gateway + agent), JSON-RPC v1 plus an XML-RPC sample. Issue 4, "How it
 * is checked" (records, every call, errors, MAC resolution, malformed records).
 * Plug ordering, clashes, auto-numbering and scale: devices-lifecycle.test.ts; metadata:
 * devices-metadata.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S, X, type Codec, type RpcClient } from '../support/rpc.js';
import { bps, completed, dneDom, startService, stat, waitEnd, type Service } from '../support/ops.js';
import {
  add,
  changedSince,
  dneAddVm,
  dneDev,
  derivedMac,
  devList,
  devStat,
  isLocalUnicastMac,
  MODULES,
  addKey,
  names,
  pciAddr,
  pciRec,
  runT,
  snapshot,
  UNPLUGGED,
  vbdFull,
  vbdPlugged,
  vgpuFull,
  vifFull,
  vifPlugged,
  vusbRec,
  type Module,
  type Pair,
} from '../support/devices.js';
import { seedVm, vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll } from '../support/xenopsd.js';

afterAll(cleanupAll);

const failed = (error: unknown) => ({ state: 'Failed', error });
const IE = (re: RegExp) => ['Internal_error', expect.stringMatching(re)];

/** A fresh Halted xenopsd-dialect VM. */
const newVm = async (c: RpcClient, tag = 'dev'): Promise<string> => c.ok<string>('VM.add', X({ vm: xenopsdVm(vmId(tag)) }));

// Records exercising every field and variant of §4.4–§4.7 (input = expected stored value unless noted).
const vbdRecords = (vm: string): Array<[string, Record<string, unknown>, Record<string, unknown>]> => [
  [
    'xvdc',
    {
      id: [vm, 'xvdc'],
      position: ['Xen', 2, 0],
      mode: 'ReadOnly',
      backend: ['VDI', 'sr-1/vdi-9'],
      ty: 'CDROM',
      unpluggable: false,
      extra_backend_keys: { mode: 'r' },
      extra_private_keys: { k: 'v' },
      qos: ['Ionice', ['BestEffort', 'High']],
      persistent: false,
      can_attach_early: true,
    },
    {},
  ],
  ['xvda', { id: [vm, 'xvda'] }, vbdFull(vm, 'xvda')],
  ['hdb', { id: [vm, 'hdb'], qos: ['Ionice', 'Idle'], backend: ['Local', '/dev/sda'], ty: 'Floppy' }, vbdFull(vm, 'hdb', { qos: ['Ionice', 'Idle'], backend: ['Local', '/dev/sda'], ty: 'Floppy' })],
  [
    'xvdb',
    { id: [vm, 'xvdb'], position: ['Ide', 1, 0], qos: ['Ionice', ['RealTime', ['Other', 3]]] },
    vbdFull(vm, 'xvdb', { position: ['Ide', 1, 0], qos: ['Ionice', ['RealTime', ['Other', 3]]] }),
  ],
];

const PVS = ['site-1', [{ addresses: ['10.1.1.1', '10.1.1.2'], first_port: 6890, last_port: 6909 }], 'eth0'];
const vifRecords = (vm: string): Array<[string, Record<string, unknown>, Record<string, unknown>]> => [
  [
    'eth1',
    {
      id: [vm, 'eth1'],
      position: 1,
      mac: 'aa:bb:cc:dd:ee:01',
      carrier: false,
      mtu: 9000,
      rate: [100, 20],
      backend: ['Remote', ['other-vm', 'sw0']],
      other_config: { a: 'b' },
      locking_mode: ['Locked', { ipv4: ['10.0.0.2'], ipv6: ['fe80::2'] }],
      extra_private_keys: { p: 'q' },
      ipv4_configuration: ['Static4', [['10.0.0.2/24'], ['10.0.0.1']]],
      ipv6_configuration: ['Static6', [['fd00::2/64'], ['fd00::1']]],
      pvs_proxy: PVS,
      vlan: 42,
      trunks: [10, 20],
    },
    {},
  ],
  ['eth0', { id: [vm, 'eth0'] }, vifFull(vm, 'eth0')],
  [
    'eth2',
    {
      id: [vm, 'eth2'],
      position: 2,
      backend: ['Sriov', pciAddr(0, 4, 1, 2)],
      locking_mode: 'Disabled',
      ipv4_configuration: ['Static4', [['10.0.0.2/24'], []]],
      ipv6_configuration: 'Autoconf6',
    },
    vifFull(vm, 'eth2', {
      position: 2,
      backend: ['Sriov', pciAddr(0, 4, 1, 2)],
      locking_mode: 'Disabled',
      ipv4_configuration: ['Static4', [['10.0.0.2/24'], []]],
      ipv6_configuration: 'Autoconf6',
    }),
  ],
  ['eth10', { id: [vm, 'eth10'], position: 10, ipv4_configuration: 'DHCP4', locking_mode: ['Locked', {}] }, vifFull(vm, 'eth10', { position: 10, ipv4_configuration: 'DHCP4', locking_mode: ['Locked', { ipv4: [], ipv6: [] }] })],
];

const NVIDIA_FULL = ['Nvidia', { physical_pci_address: pciAddr(0, 9, 0, 0), config_file: '/etc/nv.conf', virtual_pci_address: pciAddr(0, 0, 12, 0), type_id: '42', uuid: 'u-1', extra_args: '-x' }];
const vgpuRecords = (vm: string): Array<[string, Record<string, unknown>, Record<string, unknown>]> => [
  ['g0', { id: [vm, 'g0'] }, vgpuFull(vm, 'g0')],
  ['g1', { id: [vm, 'g1'], position: 1, virtual_pci_address: pciAddr(0, 0, 5, 0), physical_pci_address: pciAddr(0, 9, 0, 0), implementation: NVIDIA_FULL }, {}],
  // Nvidia defaults: virtual_pci_address 0000:00:0b.0, extra_args "" (§4.7).
  ['g2', { id: [vm, 'g2'], implementation: ['Nvidia', {}] }, vgpuFull(vm, 'g2', { implementation: ['Nvidia', { virtual_pci_address: pciAddr(0, 0, 11, 0), extra_args: '' }] })],
  [
    'g3',
    { id: [vm, 'g3'], implementation: ['GVT_g', { low_gm_sz: 128, high_gm_sz: 384, fence_sz: 4, monitor_config_file: '/m' }] },
    vgpuFull(vm, 'g3', { implementation: ['GVT_g', { low_gm_sz: 128, high_gm_sz: 384, fence_sz: 4, monitor_config_file: '/m' }] }),
  ],
  [
    'g4',
    { id: [vm, 'g4'], implementation: ['MxGPU', { physical_function: pciAddr(0, 7, 0, 1), vgpus_per_pgpu: 4, framebufferbytes: 268435456 }] },
    vgpuFull(vm, 'g4', { implementation: ['MxGPU', { physical_function: pciAddr(0, 7, 0, 1), vgpus_per_pgpu: 4, framebufferbytes: 268435456 }] }),
  ],
  // Unknown tag: the type's default (§3).
  ['g5', { id: [vm, 'g5'], implementation: ['Quantum', {}] }, vgpuFull(vm, 'g5')],
];

const pciRecords = (vm: string): Array<[string, Record<string, unknown>, Record<string, unknown>]> => [
  ['p1', pciRec(vm, 'p1', 1, { msitranslate: true, power_mgmt: false }), {}],
  ['p0', pciRec(vm, 'p0', 0), {}],
];
const vusbRecords = (vm: string): Array<[string, Record<string, unknown>, Record<string, unknown>]> => [
  ['u1', vusbRec(vm, 'u1', { speed: 12.5 }), {}],
  ['u0', vusbRec(vm, 'u0'), {}],
];

const RECORDS: Record<Module, (vm: string) => Array<[string, Record<string, unknown>, Record<string, unknown>]>> = {
  VBD: vbdRecords,
  VIF: vifRecords,
  PCI: pciRecords,
  VGPU: vgpuRecords,
  VUSB: vusbRecords,
};
const expectedOf = ([, input, exp]: [string, Record<string, unknown>, Record<string, unknown>]) => (Object.keys(exp).length === 0 ? input : exp);

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  let svc: Service;
  let c: RpcClient;
  beforeAll(async () => {
    svc = await startService(store);
    c = svc.client();
  });

  describe.each(['json1', 'xml'] as Codec[])('%s', (codec) => {
    let k: RpcClient;
    beforeAll(() => {
      k = svc.client(codec);
    });

    it.each(MODULES)('%s.add / stat / list: exact wire shapes, defaults, list in device-name order', async (m) => {
      const vm = await newVm(k);
      const recs = RECORDS[m](vm);
      for (const [dev, input] of recs) expect(await k.ok(`${m}.add`, X({ [addKey(m)]: input }))).toEqual([vm, dev]);
      for (const r of recs) {
        expect(await k.ok<Pair>(`${m}.stat`, X({ id: [vm, r[0]] }))).toEqual([expectedOf(r), UNPLUGGED[m]]);
      }
      const sorted = [...recs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      expect(await k.ok<Pair[]>(`${m}.list`, X({ id: vm }))).toEqual(sorted.map((r) => [expectedOf(r), UNPLUGGED[m]]));
      // The other kinds' lists are untouched.
      for (const other of MODULES.filter((x) => x !== m)) expect(await k.ok(`${other}.list`, X({ id: vm }))).toEqual([]);
    });

    it('add overwrites an existing record with the same id; remove deletes it (stat DNE after)', async () => {
      const vm = await newVm(k);
      await k.ok('VIF.add', X({ vif: { id: [vm, 'eth0'], rate: [100, 20] } }));
      await k.ok('VIF.add', X({ vif: { id: [vm, 'eth0'], mtu: 1400 } }));
      expect(await k.ok('VIF.stat', X({ id: [vm, 'eth0'] }))).toEqual([vifFull(vm, 'eth0', { mtu: 1400 }), UNPLUGGED.VIF]);
      for (const m of MODULES) {
        const [[dev, input]] = RECORDS[m](vm).slice(-1);
        await k.ok(`${m}.add`, X({ [addKey(m)]: input }));
        expect(await k.ok(`${m}.remove`, X({ id: [vm, dev] }))).toBeNull();
        expect(await k.fail(`${m}.stat`, X({ id: [vm, dev] }))).toEqual(dneDev(m, vm, dev));
        expect(await k.fail(`${m}.remove`, X({ id: [vm, dev] }))).toEqual(dneDev(m, vm, dev));
      }
      expect(await k.ok('VIF.list', X({ id: vm }))).toHaveLength(1);
    });

    it('VBD plug / eject / insert / unplug and VIF plug / setters / unplug on a running VM, with states', async () => {
      const vm = await newVm(k);
      await k.ok('VBD.add', X({ vbd: { id: [vm, 'xvda'], qos: ['Ionice', ['BestEffort', 'High']], backend: ['VDI', 'sr/vdi-a'] } }));
      await k.ok('VBD.add', X({ vbd: { id: [vm, 'xvdd'], mode: 'ReadOnly', ty: 'CDROM', backend: ['Local', '/dev/sr0'] } }));
      await k.ok('VIF.add', X({ vif: { id: [vm, 'eth0'], position: 3, rate: [100, 20] } }));
      expect(await runT(k, 'VM.start', { id: vm, paused: false })).toEqual(completed);
      const domid = (await stat(k, vm))[1].domids[0]!;

      expect(await k.ok('VBD.stat', X({ id: [vm, 'xvda'] }))).toEqual([
        vbdFull(vm, 'xvda', { qos: ['Ionice', ['BestEffort', 'High']], backend: ['VDI', 'sr/vdi-a'] }),
        vbdPlugged({ qos: ['Ionice', ['BestEffort', 'High']], backend: ['VDI', 'sr/vdi-a'] }),
      ]);
      expect(await k.ok('VIF.stat', X({ id: [vm, 'eth0'] }))).toEqual([vifFull(vm, 'eth0', { position: 3, rate: [100, 20] }), vifPlugged(domid, 3)]);

      // Eject: backend None in config and state; the drive stays plugged.
      expect(await runT(k, 'VBD.eject', { id: [vm, 'xvdd'] })).toEqual(completed);
      const cd = vbdFull(vm, 'xvdd', { mode: 'ReadOnly', ty: 'CDROM' });
      expect(await k.ok('VBD.stat', X({ id: [vm, 'xvdd'] }))).toEqual([cd, vbdPlugged()]);
      // Ejecting an empty drive is not an error (§7.6).
      expect(await runT(k, 'VBD.eject', { id: [vm, 'xvdd'] })).toEqual(completed);
      expect(await runT(k, 'VBD.insert', { id: [vm, 'xvdd'], disk: ['VDI', 'sr/iso-1'] })).toEqual(completed);
      expect(await k.ok('VBD.stat', X({ id: [vm, 'xvdd'] }))).toEqual([{ ...cd, backend: ['VDI', 'sr/iso-1'] }, vbdPlugged({ backend: ['VDI', 'sr/iso-1'] })]);
      // Inserting into a full drive is not an error either.
      expect(await runT(k, 'VBD.insert', { id: [vm, 'xvdd'], disk: ['Local', '/dev/sr1'] })).toEqual(completed);
      expect((await k.ok<Pair>('VBD.stat', X({ id: [vm, 'xvdd'] })))[1]).toEqual(vbdPlugged({ backend: ['Local', '/dev/sr1'] }));
      // A fixed disk is not ejectable, whatever the power state.
      expect(await runT(k, 'VBD.eject', { id: [vm, 'xvda'] })).toEqual(failed('Media_not_ejectable'));

      // Unplug / plug by hand.
      expect(await runT(k, 'VBD.unplug', { id: [vm, 'xvda'], force: false })).toEqual(completed);
      expect(await k.ok('VBD.stat', X({ id: [vm, 'xvda'] }))).toEqual([
        vbdFull(vm, 'xvda', { qos: ['Ionice', ['BestEffort', 'High']], backend: ['VDI', 'sr/vdi-a'] }),
        UNPLUGGED.VBD,
      ]);
      expect(await runT(k, 'VBD.unplug', { id: [vm, 'xvda'], force: true })).toEqual(failed('Device_not_connected'));
      expect(await k.ok('VBD.remove', X({ id: [vm, 'xvda'] }))).toBeNull();
      expect(await k.fail('VBD.stat', X({ id: [vm, 'xvda'] }))).toEqual(dneDev('VBD', vm, 'xvda'));

      expect(await runT(k, 'VIF.unplug', { id: [vm, 'eth0'] })).toEqual(completed);
      expect((await k.ok<Pair>('VIF.stat', X({ id: [vm, 'eth0'] })))[1]).toEqual(UNPLUGGED.VIF);
      expect(await runT(k, 'VIF.unplug', { id: [vm, 'eth0'] })).toEqual(failed('Device_not_connected'));
      expect(await runT(k, 'VIF.plug', { id: [vm, 'eth0'] })).toEqual(completed);
      expect((await k.ok<Pair>('VIF.stat', X({ id: [vm, 'eth0'] })))[1]).toEqual(vifPlugged(domid, 3));
      expect(await runT(k, 'VIF.plug', { id: [vm, 'eth0'] })).toEqual(failed('Device_is_connected'));
      expect(await k.fail('VIF.remove', X({ id: [vm, 'eth0'] }))).toEqual('Device_is_connected');

      // VIF setters on a plugged VIF: stored config changes, the VIF stays plugged.
      let want = vifFull(vm, 'eth0', { position: 3, rate: [100, 20] });
      const setters: Array<[string, string, unknown, Record<string, unknown>]> = [
        ['VIF.move', 'network', ['Local', 'xenbr9'], { backend: ['Local', 'xenbr9'] }],
        ['VIF.move', 'network', ['Remote', ['vm-9', 'sw1']], { backend: ['Remote', ['vm-9', 'sw1']] }],
        ['VIF.set_carrier', 'carrier', false, { carrier: false }],
        ['VIF.set_locking_mode', 'locking_mode', ['Locked', { ipv4: ['10.0.0.2', '10.0.0.3'], ipv6: ['fe80::2'] }], { locking_mode: ['Locked', { ipv4: ['10.0.0.2', '10.0.0.3'], ipv6: ['fe80::2'] }] }],
        ['VIF.set_ipv4_configuration', 'ipv4_configuration', ['Static4', [['10.0.0.2/24'], ['10.0.0.1']]], { ipv4_configuration: ['Static4', [['10.0.0.2/24'], ['10.0.0.1']]] }],
        ['VIF.set_ipv4_configuration', 'ipv4_configuration', ['Static4', [['10.0.0.2/24'], []]], { ipv4_configuration: ['Static4', [['10.0.0.2/24'], []]] }],
        ['VIF.set_ipv6_configuration', 'ipv6_configuration', ['Static6', [['fd00::5/64'], ['fd00::1']]], { ipv6_configuration: ['Static6', [['fd00::5/64'], ['fd00::1']]] }],
        ['VIF.set_pvs_proxy', 'proxy', PVS, { pvs_proxy: PVS }],
        ['VIF.set_trunks', 'trunks', [5, 6, 7], { trunks: [5, 6, 7] }],
      ];
      for (const [method, key, value, change] of setters) {
        expect(await runT(k, method, { id: [vm, 'eth0'], [key]: value }), method).toEqual(completed);
        want = { ...want, ...change };
        expect(await k.ok('VIF.stat', X({ id: [vm, 'eth0'] })), method).toEqual([want, vifPlugged(domid, 3)]);
      }
      // pvs_proxy None (argument absent): the field disappears.
      expect(await runT(k, 'VIF.set_pvs_proxy', { id: [vm, 'eth0'] })).toEqual(completed);
      const { pvs_proxy: _gone, ...noProxy } = want;
      expect(await k.ok('VIF.stat', X({ id: [vm, 'eth0'] }))).toEqual([noProxy, vifPlugged(domid, 3)]);

      expect(await runT(k, 'VM.shutdown', { id: vm })).toEqual(completed);
    });

    it('device errors: Does_not_exist keys (call errors), Device_is_connected on remove, add for an unknown VM', async () => {
      const vm = await newVm(k);
      const ghost = vmId('ghost');
      for (const m of MODULES) {
        expect(await k.fail(`${m}.stat`, X({ id: [vm, 'nope'] })), m).toEqual(dneDev(m, vm, 'nope'));
        expect(await k.fail(`${m}.stat`, X({ id: [ghost, 'nope'] })), m).toEqual(dneDev(m, ghost, 'nope'));
        expect(await k.fail(`${m}.remove`, X({ id: [vm, 'nope'] })), m).toEqual(dneDev(m, vm, 'nope'));
        expect(await k.ok(`${m}.list`, X({ id: ghost })), m).toEqual([]);
        const [[dev, input]] = RECORDS[m](ghost);
        expect(await k.fail(`${m}.add`, X({ [addKey(m)]: input })), m).toEqual(dneAddVm(ghost));
        expect(await k.fail(`${m}.stat`, X({ id: [ghost, dev] })), m).toEqual(dneDev(m, ghost, dev));
      }
      expect(await k.ok('VM.exists', X({ id: ghost }))).toBe(false);
      // T calls on an unknown device: an error of the call, no task.
      const tcalls: Array<[string, Module, Record<string, unknown>]> = [
        ['VBD.plug', 'VBD', {}],
        ['VBD.unplug', 'VBD', { force: false }],
        ['VBD.eject', 'VBD', {}],
        ['VBD.insert', 'VBD', { disk: ['VDI', 'a/b'] }],
        ['VIF.plug', 'VIF', {}],
        ['VIF.unplug', 'VIF', {}],
        ['VIF.move', 'VIF', { network: ['Local', 'br'] }],
        ['VIF.set_carrier', 'VIF', { carrier: true }],
        ['VIF.set_locking_mode', 'VIF', { locking_mode: 'Disabled' }],
        ['VIF.set_ipv4_configuration', 'VIF', { ipv4_configuration: 'DHCP4' }],
        ['VIF.set_ipv6_configuration', 'VIF', { ipv6_configuration: 'Autoconf6' }],
        ['VIF.set_pvs_proxy', 'VIF', {}],
        ['VIF.set_trunks', 'VIF', { trunks: [1] }],
      ];
      const tasksBefore = ((await k.ok<unknown[]>('Task.list', X())) ?? []).length;
      for (const [method, m, args] of tcalls) {
        expect(await k.fail(method, X({ id: [vm, 'nope'], ...args })), method).toEqual(dneDev(m, vm, 'nope'));
        expect(await k.fail(method, X({ id: [ghost, 'nope'], ...args })), method).toEqual(dneDev(m, ghost, 'nope'));
      }
      expect((await k.ok<unknown[]>('Task.list', X())).length).toBe(tasksBefore);
      // VUSB plug / unplug are not implemented yet (§4.7).
      expect(await k.fail('VUSB.plug', X({ id: [vm, 'u0'] }))).toEqual(['Unimplemented', 'VUSB.plug']);
      expect(await k.fail('VUSB.unplug', X({ id: [vm, 'u0'] }))).toEqual(['Unimplemented', 'VUSB.unplug']);
      expect(await k.fail('vusb.plug', X({ id: [vm, 'u0'] }))).toEqual(['Unimplemented', 'VUSB.plug']);
      // PCI.dequarantine: a no-op in the simulator.
      expect(await k.ok('PCI.dequarantine', X({ pci_addr: pciAddr(0, 3, 0, 0) }))).toBeNull();
    });
  });

  it('Device_is_connected on remove of plugged VBD/VIF/PCI; VGPU/VUSB stay unplugged through start and can be removed', async () => {
    const vm = await newVm(c);
    await add(c, 'VBD', { id: [vm, 'xvda'] });
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    await add(c, 'PCI', pciRec(vm, 'p0', 0));
    await add(c, 'VGPU', { id: [vm, 'g0'] });
    await add(c, 'VUSB', vusbRec(vm, 'u0'));
    expect(await runT(c, 'VM.start', { id: vm, paused: true })).toEqual(completed);
    const before = await snapshot(c, vm);
    expect(before.PCI).toEqual([[pciRec(vm, 'p0', 0), { plugged: true }]]);
    expect(before.VGPU).toEqual([[vgpuFull(vm, 'g0'), UNPLUGGED.VGPU]]);
    expect(before.VUSB).toEqual([[vusbRec(vm, 'u0'), UNPLUGGED.VUSB]]);
    for (const [m, dev] of [['VBD', 'xvda'], ['VIF', 'eth0'], ['PCI', 'p0']] as const) {
      expect(await c.fail(`${m}.remove`, X({ id: [vm, dev] })), m).toEqual('Device_is_connected');
    }
    expect(await runT(c, 'VBD.plug', { id: [vm, 'xvda'] })).toEqual(failed('Device_is_connected'));
    expect(await snapshot(c, vm)).toEqual(before);
    expect(await c.ok('VGPU.remove', X({ id: [vm, 'g0'] }))).toBeNull();
    expect(await c.ok('VUSB.remove', X({ id: [vm, 'u0'] }))).toBeNull();
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await c.ok('PCI.remove', X({ id: [vm, 'p0'] }))).toBeNull();
    expect(await c.fail('PCI.stat', X({ id: [vm, 'p0'] }))).toEqual(dneDev('PCI', vm, 'p0'));
  });

  it('on a Halted VM: Media_not_ejectable first, then Bad_power_state for eject/insert; plug needs a domain; unplug Device_not_connected; setters work; nothing else changes', async () => {
    const vm = await newVm(c);
    await add(c, 'VBD', { id: [vm, 'xvda'], backend: ['VDI', 'sr/a'] });
    await add(c, 'VBD', { id: [vm, 'xvdd'], ty: 'CDROM', mode: 'ReadOnly', backend: ['Local', '/dev/sr0'] });
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    const before = await snapshot(c, vm);
    expect(await runT(c, 'VBD.eject', { id: [vm, 'xvda'] })).toEqual(failed('Media_not_ejectable'));
    expect(await runT(c, 'VBD.eject', { id: [vm, 'xvdd'] })).toEqual(failed(bps('Halted', 'Running')));
    expect(await runT(c, 'VBD.insert', { id: [vm, 'xvdd'], disk: ['VDI', 'sr/iso'] })).toEqual(failed(bps('Halted', 'Running')));
    expect(await runT(c, 'VBD.plug', { id: [vm, 'xvda'] })).toEqual(failed(dneDom(vm)));
    expect(await runT(c, 'VIF.plug', { id: [vm, 'eth0'] })).toEqual(failed(dneDom(vm)));
    expect(await runT(c, 'VBD.unplug', { id: [vm, 'xvda'], force: false })).toEqual(failed('Device_not_connected'));
    expect(await runT(c, 'VIF.unplug', { id: [vm, 'eth0'], force: true })).toEqual(failed('Device_not_connected'));
    expect(await snapshot(c, vm)).toEqual(before);

    // Suspended: eject/insert still need Running or Paused.
    expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    expect(await runT(c, 'VM.suspend', { id: vm, suspend_vdi: ['VDI', 'sr/suspend'] })).toEqual(completed);
    expect(await runT(c, 'VBD.eject', { id: [vm, 'xvdd'] })).toEqual(failed(bps('Suspended', 'Running')));
    expect(await runT(c, 'VBD.eject', { id: [vm, 'xvda'] })).toEqual(failed('Media_not_ejectable'));
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);

    // VIF setters in any power state.
    expect(await runT(c, 'VIF.set_trunks', { id: [vm, 'eth0'], trunks: [100] })).toEqual(completed);
    expect(await runT(c, 'VIF.set_locking_mode', { id: [vm, 'eth0'], locking_mode: ['Locked', { ipv4: ['1.2.3.4'], ipv6: [] }] })).toEqual(completed);
    expect(await runT(c, 'VIF.set_ipv4_configuration', { id: [vm, 'eth0'], ipv4_configuration: ['Static4', [['10.0.0.2/24'], []]] })).toEqual(completed);
    expect(await runT(c, 'VIF.set_ipv6_configuration', { id: [vm, 'eth0'], ipv6_configuration: 'Autoconf6' })).toEqual(completed);
    expect(await runT(c, 'VIF.set_carrier', { id: [vm, 'eth0'], carrier: false })).toEqual(completed);
    expect(await runT(c, 'VIF.move', { id: [vm, 'eth0'], network: ['Sriov', pciAddr(0, 1, 2, 3)] })).toEqual(completed);
    expect(await runT(c, 'VIF.set_pvs_proxy', { id: [vm, 'eth0'], proxy: PVS })).toEqual(completed);
    expect(await devStat(c, 'VIF', [vm, 'eth0'])).toEqual([
      vifFull(vm, 'eth0', {
        trunks: [100],
        locking_mode: ['Locked', { ipv4: ['1.2.3.4'], ipv6: [] }],
        ipv4_configuration: ['Static4', [['10.0.0.2/24'], []]],
        ipv6_configuration: 'Autoconf6',
        carrier: false,
        backend: ['Sriov', pciAddr(0, 1, 2, 3)],
        pvs_proxy: PVS,
      }),
      UNPLUGGED.VIF,
    ]);
  });

  it('mac "random": a locally administered unicast MAC, different per add; mac "": derived from SHA-256 of "<vm>/<position>"', async () => {
    const vm = await newVm(c);
    const macs: string[] = [];
    for (const dev of ['r0', 'r1', 'r2']) {
      await add(c, 'VIF', { id: [vm, dev], mac: 'random' });
      const [cfg] = await devStat(c, 'VIF', [vm, dev]);
      expect(isLocalUnicastMac(cfg.mac as string), String(cfg.mac)).toBe(true);
      macs.push(cfg.mac as string);
    }
    expect(new Set(macs).size).toBe(3);
    // Re-adding "random" resolves again.
    await add(c, 'VIF', { id: [vm, 'r0'], mac: 'random' });
    expect((await devStat(c, 'VIF', [vm, 'r0']))[0].mac).not.toBe(macs[0]);

    for (const [dev, position] of [['d0', 0], ['d7', 7], ['d123', 123]] as const) {
      await add(c, 'VIF', { id: [vm, dev], mac: '', position });
      const expected = derivedMac(vm, position);
      expect(isLocalUnicastMac(expected)).toBe(true);
      expect(await devStat(c, 'VIF', [vm, dev])).toEqual([vifFull(vm, dev, { mac: expected, position }), UNPLUGGED.VIF]);
    }
    // Default position 0.
    await add(c, 'VIF', { id: [vm, 'dz'], mac: '' });
    expect((await devStat(c, 'VIF', [vm, 'dz']))[0].mac).toBe(derivedMac(vm, 0));
    // The same VM and position on another VM id gives another MAC.
    const vm2 = await newVm(c);
    await add(c, 'VIF', { id: [vm2, 'd0'], mac: '' });
    expect((await devStat(c, 'VIF', [vm2, 'd0']))[0].mac).toBe(derivedMac(vm2, 0));
    expect(derivedMac(vm2, 0)).not.toBe(derivedMac(vm, 0));
    // And over XML-RPC.
    const xml = svc.client('xml');
    await xml.ok('VIF.add', X({ vif: { id: [vm2, 'x5'], mac: '', position: 5 } }));
    expect((await devStat(c, 'VIF', [vm2, 'x5']))[0].mac).toBe(derivedMac(vm2, 5));
  });

  describe('malformed device records are refused with a clear error and change nothing', () => {
    let vm: string;
    let before: Record<Module, Pair[]>;
    beforeAll(async () => {
      vm = await newVm(c, 'bad');
      await add(c, 'VBD', { id: [vm, 'xvda'] });
      await add(c, 'VIF', { id: [vm, 'eth0'], position: 1 });
      await add(c, 'PCI', pciRec(vm, 'p0', 0));
      await add(c, 'VGPU', { id: [vm, 'g0'] });
      await add(c, 'VUSB', vusbRec(vm, 'u0'));
      before = await snapshot(c, vm);
    });

    const cases: Array<[string, Module, (vm: string) => Record<string, unknown>, RegExp]> = [
      ['bad MAC "zz"', 'VIF', (vm) => ({ id: [vm, 'eth0'], mac: 'zz' }), /mac/],
      ['bad MAC (5 octets)', 'VIF', (vm) => ({ id: [vm, 'eth9'], mac: 'aa:bb:cc:dd:ee' }), /mac/],
      ['negative VIF position', 'VIF', (vm) => ({ id: [vm, 'eth0'], position: -1 }), /^Integer out of range at vif\.position/],
      ['negative VBD position (Device_number)', 'VBD', (vm) => ({ id: [vm, 'xvda'], position: ['Xen', -1, 0] }), /^Integer out of range at vbd\.position/],
      ['negative VBD position (seed int)', 'VBD', (vm) => ({ id: [vm, 'xvdb'], position: -1 }), /^Integer out of range at vbd\.position/],
      ['VBD partition out of range', 'VBD', (vm) => ({ id: [vm, 'xvdb'], position: ['Xen', 0, 16] }), /^Integer out of range at vbd\.position/],
      ['Ide disk out of range', 'VBD', (vm) => ({ id: [vm, 'xvdb'], position: ['Ide', 20, 0] }), /^Integer out of range at vbd\.position/],
      ['negative PCI position', 'PCI', (vm) => pciRec(vm, 'p0', -1), /^Integer out of range at pci\.position/],
      ['VBD mode "Sideways" (no default for mode)', 'VBD', (vm) => ({ id: [vm, 'xvda'], mode: 'Sideways' }), /^Type error at vbd\.mode/],
      ['VBD ty "Tape"', 'VBD', (vm) => ({ id: [vm, 'xvda'], ty: 'Tape' }), /^Type error at vbd\.ty/],
      ['VBD qos class unknown', 'VBD', (vm) => ({ id: [vm, 'xvda'], qos: ['Ionice', ['BestEffort', 'Loudest']] }), /^Type error at vbd\.qos/],
      ['VBD qos scheduler unknown', 'VBD', (vm) => ({ id: [vm, 'xvda'], qos: ['Nice', 'Idle'] }), /^Type error at vbd\.qos/],
      ['VBD backend tag unknown', 'VBD', (vm) => ({ id: [vm, 'xvda'], backend: ['NFS', 'x'] }), /^Type error at vbd\.backend/],
      ['VBD bus unknown', 'VBD', (vm) => ({ id: [vm, 'xvda'], position: ['Usb', 0, 0] }), /^Type error at vbd\.position/],
      ['VIF locking_mode unknown', 'VIF', (vm) => ({ id: [vm, 'eth0'], locking_mode: 'Sideways' }), /^Type error at vif\.locking_mode/],
      ['VIF ipv4 unknown', 'VIF', (vm) => ({ id: [vm, 'eth0'], ipv4_configuration: ['Static5', [[], []]] }), /^Type error at vif\.ipv4_configuration/],
      ['VIF ipv6 unknown', 'VIF', (vm) => ({ id: [vm, 'eth0'], ipv6_configuration: 'DHCP6' }), /^Type error at vif\.ipv6_configuration/],
      ['VIF backend unknown', 'VIF', (vm) => ({ id: [vm, 'eth0'], backend: ['Wifi', 'x'] }), /^Type error at vif\.backend/],
      ['VIF rate not a pair', 'VIF', (vm) => ({ id: [vm, 'eth0'], rate: [100] }), /^Type error at vif\.rate/],
      ['VIF mtu a word', 'VIF', (vm) => ({ id: [vm, 'eth0'], mtu: 'big' }), /^Type error at vif\.mtu/],
      ['missing VBD id', 'VBD', () => ({ mode: 'ReadOnly' }), /^No value found for key 'id' in Vbd\.t/],
      ['missing VIF id', 'VIF', () => ({ position: 1 }), /^No value found for key 'id' in Vif\.t/],
      ['missing PCI id', 'PCI', () => ({ position: 1, address: pciAddr(0, 0, 0, 0) }), /^No value found for key 'id' in Pci\.t/],
      ['missing PCI address', 'PCI', (vm) => ({ id: [vm, 'p0'], position: 0 }), /^No value found for key 'address' in Pci\.t/],
      ['missing PCI position', 'PCI', (vm) => ({ id: [vm, 'p0'], address: pciAddr(0, 0, 0, 0) }), /^No value found for key 'position' in Pci\.t/],
      ['missing VGPU id', 'VGPU', () => ({ position: 0 }), /^No value found for key 'id' in Vgpu\.t/],
      ['missing VUSB hostbus', 'VUSB', (vm) => ({ id: [vm, 'u0'], hostport: '2', version: '2.0', path: '/p', speed: 12 }), /^No value found for key 'hostbus' in Vusb\.t/],
      ['PCI address field missing', 'PCI', (vm) => ({ id: [vm, 'p0'], position: 0, address: { domain: 0, bus: 0, dev: 0 } }), /^No value found for key 'fn' in Pci\.address/],
      ['device name ""', 'VBD', (vm) => ({ id: [vm, ''] }), /^invalid id$/],
      ['VIF device name ""', 'VIF', (vm) => ({ id: [vm, ''] }), /^invalid id$/],
      ['PCI device name ""', 'PCI', (vm) => pciRec(vm, '', 0), /^invalid id$/],
      ['VGPU device name ""', 'VGPU', (vm) => ({ id: [vm, ''] }), /^invalid id$/],
      ['VUSB device name ""', 'VUSB', (vm) => vusbRec(vm, ''), /^invalid id$/],
      ['VM id ""', 'VBD', () => ({ id: ['', 'xvda'] }), /^invalid id$/],
      ['id not a pair', 'VBD', (vm) => ({ id: vm }), /^Type error at vbd\.id/],
    ];

    it.each(cases)('%s (%s)', async (_what, m, rec, message) => {
      for (const codec of ['json1', 'xml'] as const) {
        const err = await svc.client(codec).fail(`${m}.add`, X({ [addKey(m)]: rec(vm) }));
        expect(err, codec).toEqual(IE(message));
      }
      expect(await snapshot(c, vm)).toEqual(before);
    });

    // Like VIF.add and PCI.add, VGPU.add refuses a negative position.
    it('negative VGPU position (VGPU)', async () => {
      const err = await c.fail('VGPU.add', X({ vgpu: { id: [vm, 'g9'], position: -1 } }));
      expect(err).toEqual(IE(/^Integer out of range at vgpu\.position/));
      expect(await snapshot(c, vm)).toEqual(before);
    });

    it('lenient forms are accepted: variant tags ignoring case, seed int position, seed record rate', async () => {
      const vm2 = await newVm(c, 'lenient');
      await add(c, 'VBD', { id: [vm2, 'xvda'], mode: 'readonly', ty: ['CDROM'], position: 5, qos: ['IONICE', ['besteffort', 'HIGH']] });
      expect((await devStat(c, 'VBD', [vm2, 'xvda']))[0]).toEqual(
        vbdFull(vm2, 'xvda', { mode: 'ReadOnly', ty: 'CDROM', position: ['Xen', 5, 0], qos: ['Ionice', ['BestEffort', 'High']] }),
      );
      // HVM VM, seed integer position < 4: Ide (§4.12).
      await add(c, 'VBD', { id: [vm2, 'xvdb'], position: 1 });
      expect((await devStat(c, 'VBD', [vm2, 'xvdb']))[0].position).toEqual(['Ide', 1, 0]);
      await add(c, 'VIF', { id: [vm2, 'eth0'], rate: { kbytes_per_sec: 100, timeslice_us: 20 }, MAC: 'AA:BB:CC:DD:EE:FF' });
      const [cfg] = await devStat(c, 'VIF', [vm2, 'eth0']);
      expect(cfg.rate).toEqual([100, 20]);
      expect((cfg.mac as string).toLowerCase()).toBe('aa:bb:cc:dd:ee:ff');
    });
  });

  it('XML-RPC sample: plug/unplug through tasks, errors as Failure envelopes, rate and QoS round-trip', async () => {
    const x = svc.client('xml');
    const vm = await x.ok<string>('VM.add', X({ vm: xenopsdVm(vmId('xml')) }));
    await x.ok('VBD.add', X({ vbd: { id: [vm, 'xvda'], qos: ['Ionice', 'Idle'], backend: ['VDI', 'sr/1'] } }));
    await x.ok('VIF.add', X({ vif: { id: [vm, 'eth0'], rate: [100, 20] } }));
    expect(await runT(x, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    const domid = (await stat(x, vm))[1].domids[0]!;
    expect(await x.ok('VBD.stat', X({ id: [vm, 'xvda'] }))).toEqual([
      vbdFull(vm, 'xvda', { qos: ['Ionice', 'Idle'], backend: ['VDI', 'sr/1'] }),
      vbdPlugged({ qos: ['Ionice', 'Idle'], backend: ['VDI', 'sr/1'] }),
    ]);
    expect(await x.ok('VIF.list', X({ id: vm }))).toEqual([[vifFull(vm, 'eth0', { rate: [100, 20] }), vifPlugged(domid, 0)]]);
    expect(await x.fail('VBD.remove', X({ id: [vm, 'xvda'] }))).toEqual('Device_is_connected');
    expect(await runT(x, 'VBD.plug', { id: [vm, 'xvda'] })).toEqual(failed('Device_is_connected'));
    expect(await runT(x, 'VBD.unplug', { id: [vm, 'xvda'], force: false })).toEqual(completed);
    expect(await runT(x, 'VBD.unplug', { id: [vm, 'xvda'], force: false })).toEqual(failed('Device_not_connected'));
    expect(await x.fail('PCI.stat', X({ id: [vm, 'p9'] }))).toEqual(dneDev('PCI', vm, 'p9'));
    expect(await x.fail('VUSB.unplug', X({ id: [vm, 'u0'] }))).toEqual(['Unimplemented', 'VUSB.unplug']);
    expect(await runT(x, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await x.ok('VIF.list', X({ id: vm }))).toEqual([[vifFull(vm, 'eth0', { rate: [100, 20] }), UNPLUGGED.VIF]]);
  });

  it('add never plugs (running VM); VM.add overwrite keeps devices; device T calls queue FIFO behind the VM\'s operations', async () => {
    const vm = await newVm(c, 'q');
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    // Submitted back to back: the unplug waits for the start on the VM's queue, so it finds eth0 plugged.
    const start = await c.ok<string>('VM.start', X({ id: vm, paused: true }));
    const unplug = await c.ok<string>('VIF.unplug', X({ id: [vm, 'eth0'] }));
    expect(Number(unplug)).toBeGreaterThan(Number(start));
    expect(await waitEnd(c, 'xenopsd', unplug)).toEqual(completed);
    expect(await waitEnd(c, 'xenopsd', start)).toEqual(completed);
    expect((await devStat(c, 'VIF', [vm, 'eth0']))[1]).toEqual(UNPLUGGED.VIF);

    await add(c, 'VBD', { id: [vm, 'xvda'] });
    await add(c, 'PCI', pciRec(vm, 'p0', 0));
    expect((await devStat(c, 'VBD', [vm, 'xvda']))[1]).toEqual(UNPLUGGED.VBD);
    expect((await devStat(c, 'PCI', [vm, 'p0']))[1]).toEqual(UNPLUGGED.PCI);
    const before = await snapshot(c, vm);
    await c.ok('VM.add', X({ vm: xenopsdVm(vm, { name: 'renamed' }) }));
    expect(await snapshot(c, vm)).toEqual(before);
    expect((await stat(c, vm))[0].name).toBe('renamed');
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
  });

  it('UPDATES: device add and plug signal the device id; device remove and VM.remove drop them from the set', async () => {
    const vm = await newVm(c, 'upd');
    const last = await c.ok<number>('UPDATES.last_id', X());
    await add(c, 'VBD', { id: [vm, 'xvda'] });
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    await add(c, 'VGPU', { id: [vm, 'g0'] });
    const ids = await changedSince(c, last);
    expect(ids).toEqual(expect.arrayContaining([['Vbd', [vm, 'xvda']], ['Vif', [vm, 'eth0']], ['Vgpu', [vm, 'g0']]]));
    expect(await c.ok('VGPU.remove', X({ id: [vm, 'g0'] }))).toBeNull();
    const all = await changedSince(c, 0);
    expect(all).toContainEqual(['Vbd', [vm, 'xvda']]);
    expect(all).not.toContainEqual(['Vgpu', [vm, 'g0']]);
    expect(await c.ok('VM.remove', X({ id: vm }))).toBeNull();
    const after = await changedSince(c, 0);
    expect(after.filter(([, id]) => JSON.stringify(id).includes(vm))).toEqual([]);
  });

  it('a transient (seed) VM shut down from Running is removed with all its devices; seed Vm.remove cascades too', async () => {
    const vm = await c.ok<string>('Vm.add', S({ t: seedVm(vmId('tr'), { transient: true }) }));
    await add(c, 'VBD', { id: [vm, 'xvda'] });
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    await add(c, 'VUSB', vusbRec(vm, 'u0'));
    expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await c.ok('VM.exists', X({ id: vm }))).toBe(false);
    for (const m of MODULES) expect(await devList(c, m, vm), m).toEqual([]);
    expect(await c.fail('VBD.stat', X({ id: [vm, 'xvda'] }))).toEqual(dneDev('VBD', vm, 'xvda'));

    const vm2 = await c.ok<string>('Vm.add', S({ t: seedVm(vmId('sr')) }));
    await add(c, 'VBD', { id: [vm2, 'xvda'] });
    await add(c, 'PCI', pciRec(vm2, 'p0', 0));
    expect(await c.ok('Vm.remove', S({ id: vm2 }))).toBeNull();
    expect(await devList(c, 'VBD', vm2)).toEqual([]);
    expect(await devList(c, 'PCI', vm2)).toEqual([]);
  });

  it('VM.remove cascades to every device; a running VM is refused and keeps its devices', async () => {
    const vm = await newVm(c, 'cascade');
    for (const m of MODULES) for (const [, input] of RECORDS[m](vm)) await add(c, m, input);
    // Positions clash between the VIF records? No: 1, 0, 2, 10. PCI: 1, 0.
    expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    const before = await snapshot(c, vm);
    expect(await c.fail('VM.remove', X({ id: vm }))).toEqual(bps('Paused', 'Halted'));
    expect(await snapshot(c, vm)).toEqual(before);
    expect(await runT(c, 'VM.shutdown', { id: vm })).toEqual(completed);
    expect(await c.ok('VM.remove', X({ id: vm }))).toBeNull();
    for (const m of MODULES) {
      expect(await devList(c, m, vm), m).toEqual([]);
      const [[dev]] = RECORDS[m](vm);
      expect(await c.fail(`${m}.stat`, X({ id: [vm, dev] })), m).toEqual(dneDev(m, vm, dev));
    }
    // Re-adding the VM does not bring the devices back.
    await c.ok('VM.add', X({ vm: xenopsdVm(vm) }));
    for (const m of MODULES) expect(await names(c, m, vm), m).toEqual([]);
    // Suspended VMs can be removed too, with their devices.
    await add(c, 'VBD', { id: [vm, 'xvda'] });
    await add(c, 'VIF', { id: [vm, 'eth0'] });
    expect(await runT(c, 'VM.start', { id: vm, paused: false })).toEqual(completed);
    expect(await runT(c, 'VM.suspend', { id: vm, suspend_vdi: ['VDI', 'sr/s'] })).toEqual(completed);
    expect(await c.ok('VM.remove', X({ id: vm }))).toBeNull();
    expect(await names(c, 'VBD', vm)).toEqual([]);
    expect(await names(c, 'VIF', vm)).toEqual([]);
  });
});
