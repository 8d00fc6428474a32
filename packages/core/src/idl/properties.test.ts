/**
 * Property tests: for every IDL type, internal values survive encode → (codec) → decode, in the
 * xenopsd and internal dialects, directly and through the JSON and an XML-RPC-like path; and the
 * seed encoding decodes to the §4.12 projection of the value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ErrorValue } from '../errors.js';
import type { Dialect, Type } from './descriptor.js';
import {
  BarrierT,
  ConsoleT,
  DeviceNumberT,
  DiskT,
  DynamicIdT,
  DynamicT,
  ErrorT,
  GuestAgentFeatureT,
  HostT,
  MetadataT,
  NetworkT,
  NumaAffinityPolicyT,
  PciAddressT,
  PciStateT,
  PciT,
  PowerStateT,
  QosT,
  QueryT,
  RpcDouble,
  TaskT,
  UpdatesResultT,
  VbdStateT,
  VbdT,
  VgpuStateT,
  VgpuT,
  VifStateT,
  VifT,
  VmStateT,
  VmT,
  VusbStateT,
  VusbT,
  decodeVbd,
  firstLine,
  parseJsonWire,
  wireToJson,
  type BuilderInfo,
  type DeviceNumber,
  type DynamicChange,
  type HvmInfo,
  type Metadata,
  type Network,
  type Pci,
  type PvInfo,
  type TaskView,
  type Vbd,
  type Vif,
  type VmConfig,
  type VmState,
  type WireIn,
  type WireOut,
} from './index.js';

// ---------------------------------------------------------------------------------------------
// Codecs

/** What an XML-RPC parser would hand back for an encoded value: plain numbers, null-prototype structs. */
function xmlLike(w: WireOut): WireIn {
  if (w instanceof RpcDouble) return w.value;
  if (Array.isArray(w)) return w.map(xmlLike);
  if (w instanceof Map) {
    const o = Object.create(null) as { [k: string]: WireIn };
    for (const [k, v] of w) o[k] = xmlLike(v);
    return o;
  }
  return w;
}

const codecs: Array<[string, (w: WireOut) => unknown]> = [
  ['direct', (w) => w],
  ['json', (w) => parseJsonWire(wireToJson(w))],
  ['xml', xmlLike],
];

function assertRoundTrip<T>(t: Type<T>, arb: fc.Arbitrary<T>, project: Partial<Record<Dialect, (x: T) => T>> = {}, runs = 60): void {
  fc.assert(
    fc.property(arb, (x) => {
      for (const d of ['xenopsd', 'internal', ...(project.seed ? ['seed' as const] : [])] as Dialect[]) {
        const expected = (project[d] ?? ((v: T) => v))(x);
        for (const [, codec] of codecs) {
          expect(t.decode(codec(t.encode(x, d)), 'x')).toEqual(expected);
        }
      }
    }),
    { numRuns: runs },
  );
}

// ---------------------------------------------------------------------------------------------
// Arbitraries of internal values

const str = fc.string({ maxLength: 8 });
const nonEmpty = fc.string({ minLength: 1, maxLength: 8 });
/** Dict keys: not integer-like, since JS objects (hence the JSON path) reorder such keys. */
const dictKey = fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__')).filter((k) => !/^(0|[1-9]\d*)$/.test(k));
const dictOf = <T>(v: fc.Arbitrary<T>) =>
  fc.uniqueArray(fc.tuple(dictKey, v), { selector: ([k]) => k, maxLength: 4 }).map((pairs) => pairs as Array<[string, T]>);
const safeInt = fc.oneof(fc.integer(), fc.maxSafeInteger());
const nonNeg = fc.nat();
const int32 = fc.integer();
const dbl = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));
const small = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 3 });
const tag = <K extends string, A>(k: K, a: fc.Arbitrary<A>) => a.map((x) => [k, x] as [K, A]);
/** A record whose `optional` keys are absent or present (never `undefined`). */
function rec<R extends Record<string, fc.Arbitrary<unknown>>, O extends Record<string, fc.Arbitrary<unknown>>>(required: R, optional: O) {
  return fc.record({ ...required, ...optional }, { requiredKeys: Object.keys(required) as never }) as unknown as fc.Arbitrary<
    { [K in keyof R]: R[K] extends fc.Arbitrary<infer T> ? T : never } & { [K in keyof O]?: O[K] extends fc.Arbitrary<infer T> ? T : never }
  >;
}

const powerState = fc.constantFrom('Running', 'Halted', 'Suspended', 'Paused' as const);
const disk = fc.oneof(tag('Local', str), tag('VDI', str));
const pciAddress = fc.record({ domain: safeInt, bus: safeInt, dev: safeInt, fn: safeInt });
const network: fc.Arbitrary<Network> = fc.oneof(tag('Local', str), tag('Remote', fc.tuple(str, str)), tag('Sriov', pciAddress));
const deviceNumber: fc.Arbitrary<DeviceNumber> = fc.oneof(
  fc.tuple(fc.constant('Xen' as const), fc.integer({ min: 0, max: 1048575 }), fc.integer({ min: 0, max: 15 })),
  fc.tuple(fc.constant('Scsi' as const), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 })),
  fc.tuple(fc.constant('Floppy' as const), fc.integer({ min: 0, max: 2 }), fc.constant(0)),
  fc.tuple(fc.constant('Ide' as const), fc.integer({ min: 0, max: 19 }), fc.integer({ min: 0, max: 63 })),
);
const action = fc.constantFrom('Coredump', 'Shutdown', 'Start', 'Pause', 'Softreboot' as const);
const video = fc.oneof(fc.constantFrom('Cirrus', 'Standard_VGA', 'Vgpu' as const), fc.constant(['IGD_passthrough', 'GVT_d'] as ['IGD_passthrough', 'GVT_d']));
const firmware = fc.oneof(
  fc.constant('Bios' as const),
  tag('Uefi', fc.record({ on_boot: fc.constantFrom('Persist', 'Reset' as const), backend: str })),
);
const hvmInfo: fc.Arbitrary<HvmInfo> = rec(
  {
    hap: fc.boolean(),
    shadow_multiplier: dbl,
    timeoffset: str,
    video_mib: safeInt,
    video,
    acpi: fc.boolean(),
    pci_emulations: small(str),
    pci_passthrough: fc.boolean(),
    boot_order: str,
    qemu_disk_cmdline: fc.boolean(),
    qemu_stubdom: fc.boolean(),
    firmware,
  },
  { serial: str, keymap: str, vnc_ip: str, tpm: tag('Vtpm', str) },
);
const boot = fc.oneof(
  tag('Direct', rec({ kernel: str, cmdline: str }, { ramdisk: str })),
  tag('Indirect', fc.record({ bootloader: str, extra_args: str, legacy_args: str, bootloader_args: str, devices: small(disk) })),
);
const pvInfo: fc.Arbitrary<PvInfo> = rec(
  { boot, framebuffer: fc.boolean(), vncterm: fc.boolean(), pci_passthrough: fc.boolean() },
  { framebuffer_ip: str, vncterm_ip: str },
);
const builderInfo: fc.Arbitrary<BuilderInfo> = fc.oneof(tag('HVM', hvmInfo), tag('PV', pvInfo), tag('PVinPVH', pvInfo), tag('PVH', pvInfo));
const vm: fc.Arbitrary<VmConfig> = rec(
  {
    id: nonEmpty,
    name: str,
    ssidref: int32,
    xsdata: dictOf(str),
    platformdata: dictOf(str),
    bios_strings: dictOf(str),
    ty: builderInfo,
    suppress_spurious_page_faults: fc.boolean(),
    memory_static_max: safeInt,
    memory_dynamic_max: safeInt,
    memory_dynamic_min: safeInt,
    vcpu_max: safeInt,
    vcpus: safeInt,
    scheduler_params: rec({ affinity: small(small(safeInt)) }, { priority: fc.tuple(safeInt, safeInt) }),
    on_crash: small(action),
    on_shutdown: small(action),
    on_reboot: small(action),
    on_softreboot: small(action),
    transient: fc.boolean(),
    pci_msitranslate: fc.boolean(),
    pci_power_mgmt: fc.boolean(),
    has_vendor_device: fc.boolean(),
  },
  { machine_address_size: safeInt, generation_id: str },
);
const vmState: fc.Arbitrary<VmState> = fc.record({
  power_state: powerState,
  domids: small(safeInt),
  consoles: small(fc.record({ protocol: fc.constantFrom('Rfb', 'Vt100' as const), port: safeInt, path: str })),
  memory_target: safeInt,
  memory_actual: safeInt,
  memory_limit: safeInt,
  vcpu_target: safeInt,
  shadow_multiplier_target: dbl,
  rtc_timeoffset: str,
  uncooperative_balloon_driver: fc.boolean(),
  guest_agent: dictOf(str),
  xsdata_state: dictOf(str),
  pv_drivers_detected: fc.boolean(),
  last_start_time: dbl,
  hvm: fc.boolean(),
  nomigrate: fc.boolean(),
  nested_virt: fc.boolean(),
  domain_type: fc.constantFrom('Domain_HVM', 'Domain_PV', 'Domain_PVinPVH', 'Domain_PVH', 'Domain_undefined' as const),
  featureset: str,
  numa_optimised: fc.boolean(),
  numa_nodes: safeInt,
  numa_node_memory: small(fc.tuple(safeInt, safeInt)),
});
const qosClass = fc.oneof(fc.constantFrom('Highest', 'High', 'Normal', 'Low', 'Lowest' as const), tag('Other', safeInt));
const qos = tag('Ionice', fc.oneof(tag('RealTime', qosClass), fc.constant('Idle' as const), tag('BestEffort', qosClass)));
const deviceId = fc.tuple(nonEmpty, nonEmpty);
const vbd: fc.Arbitrary<Vbd> = rec(
  {
    id: deviceId,
    mode: fc.constantFrom('ReadOnly', 'ReadWrite' as const),
    ty: fc.constantFrom('CDROM', 'Disk', 'Floppy' as const),
    unpluggable: fc.boolean(),
    extra_backend_keys: dictOf(str),
    extra_private_keys: dictOf(str),
    persistent: fc.boolean(),
    can_attach_early: fc.boolean(),
  },
  { position: deviceNumber, backend: disk, qos },
);
const vbdState = rec({ active: fc.boolean(), plugged: fc.boolean() }, { qos_target: qos, backend_present: disk });
const ipConfig = <A extends string, S extends string, B extends string>(a: A, s: S, b: B) =>
  fc.oneof(fc.constantFrom(a, b), tag(s, fc.tuple(small(str), fc.option(str, { nil: undefined }))));
const vif: fc.Arbitrary<Vif> = rec(
  {
    id: deviceId,
    position: safeInt,
    mac: str,
    carrier: fc.boolean(),
    mtu: safeInt,
    backend: network,
    other_config: dictOf(str),
    locking_mode: fc.oneof(fc.constantFrom('Unlocked', 'Disabled' as const), tag('Locked', fc.record({ ipv4: small(str), ipv6: small(str) }))),
    extra_private_keys: dictOf(str),
    ipv4_configuration: ipConfig('Unspecified4', 'Static4', 'DHCP4'),
    ipv6_configuration: ipConfig('Unspecified6', 'Static6', 'Autoconf6'),
    trunks: small(safeInt),
  },
  {
    rate: fc.tuple(safeInt, safeInt),
    pvs_proxy: fc.tuple(str, small(fc.record({ addresses: small(str), first_port: safeInt, last_port: safeInt })), str),
    vlan: safeInt,
  },
);
const vifState = rec(
  { active: fc.boolean(), plugged: fc.boolean(), kthread_pid: safeInt, media_present: fc.boolean(), pvs_rules_active: fc.boolean() },
  { device: str },
);
const pci: fc.Arbitrary<Pci> = rec({ id: deviceId, position: safeInt, address: pciAddress }, { msitranslate: fc.boolean(), power_mgmt: fc.boolean() });
const vgpuImplementation = fc.oneof(
  fc.constant('Empty' as const),
  tag('GVT_g', rec({ low_gm_sz: safeInt, high_gm_sz: safeInt, fence_sz: safeInt }, { physical_pci_address: pciAddress, monitor_config_file: str })),
  tag('Nvidia', rec({ virtual_pci_address: pciAddress, extra_args: str }, { physical_pci_address: pciAddress, config_file: str, type_id: str, uuid: str })),
  tag('MxGPU', rec({ vgpus_per_pgpu: safeInt, framebufferbytes: safeInt }, { physical_function: pciAddress })),
);
const vgpu = rec({ id: deviceId, position: safeInt, physical_pci_address: pciAddress, implementation: vgpuImplementation }, { virtual_pci_address: pciAddress });
const vusb = fc.record({ id: deviceId, hostbus: str, hostport: str, version: str, path: str, speed: dbl });
const metadata: fc.Arbitrary<Metadata> = rec(
  { vm, vbds: small(vbd), vifs: small(vif), pcis: small(pci), vgpus: small(vgpu), vusbs: small(vusb) },
  { domains: str },
);
const errorValue: fc.Arbitrary<ErrorValue> = fc.oneof(
  fc.constantFrom(
    'Domain_not_built',
    'Failed_to_acknowledge_shutdown_request',
    'Failed_to_acknowledge_suspend_request',
    'Device_is_connected',
    'Device_not_connected',
    'Media_not_ejectable',
    'Media_present',
    'No_bootable_device',
    'IO_error',
    'PCIBack_not_loaded',
    'Unknown_error',
  ),
  tag('Internal_error', str),
  tag('Unimplemented', str),
  tag('Cancelled', str),
  tag('Already_exists', fc.tuple(str, str)),
  tag('Does_not_exist', fc.tuple(str, str)),
  tag('Invalid_vcpus', safeInt),
  tag('Bad_power_state', fc.tuple(powerState, powerState)),
  tag('Failed_to_shutdown', fc.tuple(str, dbl)),
  tag('Failed_to_suspend', fc.tuple(str, dbl)),
  tag('Device_detach_rejected', fc.tuple(str, str, str)),
  tag('Bootloader_error', fc.tuple(str, str)),
  tag('Cannot_free_this_much_memory', fc.tuple(safeInt, safeInt)),
  tag('Vms_failed_to_cooperate', small(str)),
  tag('Hook_failed', fc.tuple(str, str, str, str)),
  tag('Not_enough_memory', safeInt),
  tag('Storage_backend_error', fc.tuple(str, small(str))),
);
const taskResult = fc.oneof(str, safeInt, small(str));
const task: fc.Arbitrary<TaskView> = fc.record({
  id: fc.nat().map(String),
  dbg: fc.oneof(str, fc.tuple(str, str).map(([a, b]) => `${a}\n${b}`)),
  ctime: dbl,
  state: fc.oneof(
    tag('Pending', dbl),
    tag('Completed', rec({ duration: dbl }, { result: taskResult })),
    tag('Failed', errorValue),
  ),
  cancelPointsSeen: nonNeg,
  cancellable: fc.boolean(),
});
const dynamicId = fc.oneof(
  tag('Vm', nonEmpty),
  ...(['Vbd', 'Vif', 'Pci', 'Vgpu', 'Vusb'] as const).map((k) => tag(k, deviceId)),
  tag('Task', str),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const dynamicChange = fc.oneof(
  tag('Vm_t', fc.tuple(nonEmpty, maybe(fc.tuple(vm, vmState)))),
  tag('Vbd_t', fc.tuple(deviceId, maybe(fc.tuple(vbd, vbdState)))),
  tag('Vif_t', fc.tuple(deviceId, maybe(fc.tuple(vif, vifState)))),
  tag('Pci_t', fc.tuple(deviceId, maybe(fc.tuple(pci, fc.record({ plugged: fc.boolean() }))))),
  tag('Vgpu_t', fc.tuple(deviceId, maybe(fc.tuple(vgpu, rec({ active: fc.boolean(), plugged: fc.boolean() }, { emulator_pid: safeInt }))))),
  tag('Vusb_t', fc.tuple(deviceId, maybe(fc.tuple(vusb, fc.record({ plugged: fc.boolean() }))))),
  tag('Task_t', fc.tuple(str, maybe(task))),
) as fc.Arbitrary<DynamicChange>;

// ---------------------------------------------------------------------------------------------
// Projections: what survives a dialect

/** xenopsd drops `transient` (it reads back as false). */
const xenopsdVm = (v: VmConfig): VmConfig => ({ ...v, transient: false });
const xenopsdTask = (t: TaskView): TaskView => ({ ...t, dbg: firstLine(t.dbg) });

function omit<T extends object, K extends keyof T>(o: T, ...keys: K[]): T {
  const out = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

function seedBuilder(b: BuilderInfo): BuilderInfo {
  if (b[0] === 'HVM') {
    const h = omit(b[1], 'tpm');
    return ['HVM', { ...h, firmware: 'Bios', video: b[1].video === 'Cirrus' ? 'Cirrus' : 'Standard_VGA' }];
  }
  return ['PV', { ...omit(b[1], 'framebuffer_ip'), pci_passthrough: false }];
}
const seedActions = (l: VmConfig['on_crash']) => l.filter((a) => a !== 'Pause' && a !== 'Softreboot');

/** §4.12 projection of a Vm.t through the seed shape. */
function seedVm(v: VmConfig): VmConfig {
  return {
    ...omit(v, 'generation_id'),
    ty: seedBuilder(v.ty),
    on_crash: seedActions(v.on_crash),
    on_shutdown: seedActions(v.on_shutdown),
    on_reboot: seedActions(v.on_reboot),
    on_softreboot: ['Softreboot'],
    has_vendor_device: false,
  };
}

function seedVbd(v: Vbd, vmIsHvm = false): Vbd {
  const out: Vbd = { ...v, ty: v.ty === 'Floppy' ? 'Disk' : v.ty, persistent: true, can_attach_early: false };
  if (v.position) {
    const n = v.position[1];
    out.position = vmIsHvm && n < 4 ? ['Ide', n, 0] : ['Xen', n, 0];
  }
  return out;
}

function seedNetwork(n: Network): Network {
  if (n[0] === 'Remote') return ['Remote', ['', n[1][1]]];
  if (n[0] === 'Sriov') return ['Local', ''];
  return n;
}

function seedVif(v: Vif): Vif {
  return {
    ...omit(v, 'pvs_proxy', 'vlan'),
    backend: seedNetwork(v.backend),
    locking_mode: 'Unlocked',
    ipv4_configuration: 'Unspecified4',
    ipv6_configuration: 'Unspecified6',
    trunks: [],
  };
}

function seedMetadata(m: Metadata): Metadata {
  const hvm = m.vm.ty[0] === 'HVM';
  return { ...m, vm: seedVm(m.vm), vbds: m.vbds.map((v) => seedVbd(v, hvm)), vifs: m.vifs.map(seedVif), vgpus: [], vusbs: [] };
}

function xenopsdDynamic(c: DynamicChange): DynamicChange {
  if (c[0] === 'Vm_t' && c[1][1]) return ['Vm_t', [c[1][0], [xenopsdVm(c[1][1][0]), c[1][1][1]]]];
  if (c[0] === 'Task_t' && c[1][1]) return ['Task_t', [c[1][0], xenopsdTask(c[1][1])]];
  return c;
}

// ---------------------------------------------------------------------------------------------

describe('round trips (xenopsd and internal dialects; direct, JSON, XML-RPC-like)', () => {
  it('power_state, disk, Pci.address, Network.t, Device_number', () => {
    assertRoundTrip(PowerStateT, powerState);
    assertRoundTrip(DiskT, disk);
    assertRoundTrip(PciAddressT, pciAddress);
    assertRoundTrip(NetworkT, network);
    assertRoundTrip(DeviceNumberT, deviceNumber);
  });
  it('Vm.t', () => assertRoundTrip(VmT, vm, { xenopsd: xenopsdVm }, 100));
  it('Vm.state and console', () => {
    assertRoundTrip(VmStateT, vmState);
    assertRoundTrip(ConsoleT, fc.record({ protocol: fc.constantFrom('Rfb', 'Vt100' as const), port: safeInt, path: str }));
  });
  it('Vbd.t, Vbd.state, qos', () => {
    assertRoundTrip(VbdT, vbd);
    assertRoundTrip(VbdStateT, vbdState);
    assertRoundTrip(QosT, qos);
  });
  it('Vif.t, Vif.state', () => {
    assertRoundTrip(VifT, vif);
    assertRoundTrip(VifStateT, vifState);
  });
  it('Pci.t, Pci.state', () => {
    assertRoundTrip(PciT, pci);
    assertRoundTrip(PciStateT, fc.record({ plugged: fc.boolean() }));
  });
  it('Vgpu.t, Vgpu.state, Vusb.t, Vusb.state', () => {
    assertRoundTrip(VgpuT, vgpu);
    assertRoundTrip(VgpuStateT, rec({ active: fc.boolean(), plugged: fc.boolean() }, { emulator_pid: safeInt }));
    assertRoundTrip(VusbT, vusb);
    assertRoundTrip(VusbStateT, fc.record({ plugged: fc.boolean() }));
  });
  it('Metadata.t', () => assertRoundTrip(MetadataT, metadata, { xenopsd: (m) => ({ ...m, vm: xenopsdVm(m.vm) }) }, 40));
  it('Task.t (the xenopsd encoding shows dbg up to its first newline)', () =>
    assertRoundTrip(TaskT, task, { xenopsd: xenopsdTask }, 100));
  it('error values', () => assertRoundTrip(ErrorT, errorValue, {}, 200));
  it('Dynamic.id, barrier, UPDATES.get result, Dynamic.t', () => {
    assertRoundTrip(DynamicIdT, dynamicId);
    assertRoundTrip(BarrierT, fc.tuple(safeInt, small(dynamicId)));
    assertRoundTrip(UpdatesResultT, fc.tuple(small(fc.tuple(safeInt, small(dynamicId))), small(dynamicId), safeInt));
    assertRoundTrip(DynamicT, dynamicChange, { xenopsd: xenopsdDynamic }, 40);
  });
  it('Query.t, Host.t, guest_agent_feature, numa_affinity_policy', () => {
    assertRoundTrip(QueryT, fc.record({ name: str, vendor: str, version: str, features: small(str), instance_id: str }));
    const s = str;
    assertRoundTrip(
      HostT,
      fc.record({
        cpu_info: fc.record({
          cpu_count: safeInt,
          socket_count: safeInt,
          threads_per_core: safeInt,
          vendor: s,
          speed: s,
          modelname: s,
          family: s,
          model: s,
          stepping: s,
          flags: s,
          features: s,
          features_pv: s,
          features_hvm: s,
          features_pv_host: s,
          features_hvm_host: s,
        }),
        hypervisor: fc.record({ version: s, capabilities: s }),
        chipset_info: fc.record({ iommu: fc.boolean(), hvm: fc.boolean() }),
      }),
    );
    assertRoundTrip(GuestAgentFeatureT, fc.record({ name: str, licensed: fc.boolean(), parameters: dictOf(str) }));
    assertRoundTrip(NumaAffinityPolicyT, fc.constantFrom('Any', 'Best_effort', 'Best_effort_hard', 'Prio_mem_only' as const));
  });
});

describe('seed dialect: decode(encode(x, "seed")) is the §4.12 projection of x', () => {
  it('Vm.t', () => assertRoundTrip(VmT, vm, { xenopsd: xenopsdVm, seed: seedVm }, 100));
  it('Vbd.t (without and with the HVM context)', () => {
    assertRoundTrip(VbdT, vbd, { seed: (v) => seedVbd(v) });
    fc.assert(
      fc.property(vbd, fc.boolean(), (v, hvm) => {
        for (const [, codec] of codecs) {
          expect(decodeVbd(codec(VbdT.encode(v, 'seed')), 'vbd', { vmIsHvm: hvm })).toEqual(seedVbd(v, hvm));
          // The context only changes seed integer positions: a Device_number stays as it is.
          expect(decodeVbd(codec(VbdT.encode(v, 'xenopsd')), 'vbd', { vmIsHvm: hvm })).toEqual(v);
        }
      }),
      { numRuns: 60 },
    );
  });
  it('Vif.t', () => assertRoundTrip(VifT, vif, { seed: seedVif }));
  it('Pci.t (flat in the seed)', () => assertRoundTrip(PciT, pci, { seed: (p) => p }));
  it('Metadata.t', () =>
    assertRoundTrip(MetadataT, metadata, { xenopsd: (m) => ({ ...m, vm: xenopsdVm(m.vm) }), seed: seedMetadata }, 40));
  it('Vm.state: the fields the seed lacks read back as neutral values', () => {
    const neutral = VmStateT.decode({}, 'state');
    const seedFields = [
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
    ] as const;
    assertRoundTrip(VmStateT, vmState, {
      seed: (s) => {
        const out: Record<string, unknown> = { ...neutral };
        for (const k of seedFields) out[k] = s[k];
        out['consoles'] = s.consoles.map((c) => ({ ...c, path: '' }));
        return out as VmState;
      },
    });
  });
});
