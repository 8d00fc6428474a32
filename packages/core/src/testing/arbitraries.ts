/**
 * fast-check arbitraries of the IDL's internal values (API.md §4), shared by the property tests
 * (IDL round trips, event codec round trips). Test-only: not part of the build.
 */
import fc from 'fast-check';
import type { ErrorValue } from '../errors.js';
import type {
  BuilderInfo,
  DeviceNumber,
  DynamicChange,
  HvmInfo,
  Metadata,
  Network,
  Pci,
  PvInfo,
  TaskView,
  Vbd,
  Vif,
  VmConfig,
  VmState,
} from '../idl/index.js';

export const str = fc.string({ maxLength: 8 });
export const nonEmpty = fc.string({ minLength: 1, maxLength: 8 });
/** Dict keys: not integer-like, since JS objects (hence the JSON path) reorder such keys. */
export const dictKey = fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__')).filter((k) => !/^(0|[1-9]\d*)$/.test(k));
export const dictOf = <T>(v: fc.Arbitrary<T>) =>
  fc.uniqueArray(fc.tuple(dictKey, v), { selector: ([k]) => k, maxLength: 4 }).map((pairs) => pairs as Array<[string, T]>);
export const safeInt = fc.oneof(fc.integer(), fc.maxSafeInteger());
export const nonNeg = fc.nat();
export const int32 = fc.integer();
export const dbl = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));
export const small = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 3 });
export const tag = <K extends string, A>(k: K, a: fc.Arbitrary<A>) => a.map((x) => [k, x] as [K, A]);
/** A record whose `optional` keys are absent or present (never `undefined`). */
export function rec<R extends Record<string, fc.Arbitrary<unknown>>, O extends Record<string, fc.Arbitrary<unknown>>>(required: R, optional: O) {
  return fc.record({ ...required, ...optional }, { requiredKeys: Object.keys(required) as never }) as unknown as fc.Arbitrary<
    { [K in keyof R]: R[K] extends fc.Arbitrary<infer T> ? T : never } & { [K in keyof O]?: O[K] extends fc.Arbitrary<infer T> ? T : never }
  >;
}

export const powerState = fc.constantFrom('Running', 'Halted', 'Suspended', 'Paused' as const);
export const disk = fc.oneof(tag('Local', str), tag('VDI', str));
export const pciAddress = fc.record({ domain: safeInt, bus: safeInt, dev: safeInt, fn: safeInt });
export const network: fc.Arbitrary<Network> = fc.oneof(tag('Local', str), tag('Remote', fc.tuple(str, str)), tag('Sriov', pciAddress));
export const deviceNumber: fc.Arbitrary<DeviceNumber> = fc.oneof(
  fc.tuple(fc.constant('Xen' as const), fc.integer({ min: 0, max: 1048575 }), fc.integer({ min: 0, max: 15 })),
  fc.tuple(fc.constant('Scsi' as const), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 })),
  fc.tuple(fc.constant('Floppy' as const), fc.integer({ min: 0, max: 2 }), fc.constant(0)),
  fc.tuple(fc.constant('Ide' as const), fc.integer({ min: 0, max: 19 }), fc.integer({ min: 0, max: 63 })),
);
export const action = fc.constantFrom('Coredump', 'Shutdown', 'Start', 'Pause', 'Softreboot' as const);
export const video = fc.oneof(fc.constantFrom('Cirrus', 'Standard_VGA', 'Vgpu' as const), fc.constant(['IGD_passthrough', 'GVT_d'] as ['IGD_passthrough', 'GVT_d']));
export const firmware = fc.oneof(
  fc.constant('Bios' as const),
  tag('Uefi', fc.record({ on_boot: fc.constantFrom('Persist', 'Reset' as const), backend: str })),
);
export const hvmInfo: fc.Arbitrary<HvmInfo> = rec(
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
export const boot = fc.oneof(
  tag('Direct', rec({ kernel: str, cmdline: str }, { ramdisk: str })),
  tag('Indirect', fc.record({ bootloader: str, extra_args: str, legacy_args: str, bootloader_args: str, devices: small(disk) })),
);
export const pvInfo: fc.Arbitrary<PvInfo> = rec(
  { boot, framebuffer: fc.boolean(), vncterm: fc.boolean(), pci_passthrough: fc.boolean() },
  { framebuffer_ip: str, vncterm_ip: str },
);
export const builderInfo: fc.Arbitrary<BuilderInfo> = fc.oneof(tag('HVM', hvmInfo), tag('PV', pvInfo), tag('PVinPVH', pvInfo), tag('PVH', pvInfo));
export const vm: fc.Arbitrary<VmConfig> = rec(
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
export const vmState: fc.Arbitrary<VmState> = fc.record({
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
export const qosClass = fc.oneof(fc.constantFrom('Highest', 'High', 'Normal', 'Low', 'Lowest' as const), tag('Other', safeInt));
export const qos = tag('Ionice', fc.oneof(tag('RealTime', qosClass), fc.constant('Idle' as const), tag('BestEffort', qosClass)));
export const deviceId = fc.tuple(nonEmpty, nonEmpty);
export const vbd: fc.Arbitrary<Vbd> = rec(
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
export const vbdState = rec({ active: fc.boolean(), plugged: fc.boolean() }, { qos_target: qos, backend_present: disk });
export const ipConfig = <A extends string, S extends string, B extends string>(a: A, s: S, b: B) =>
  fc.oneof(fc.constantFrom(a, b), tag(s, fc.tuple(small(str), fc.option(str, { nil: undefined }))));
export const vif: fc.Arbitrary<Vif> = rec(
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
export const vifState = rec(
  { active: fc.boolean(), plugged: fc.boolean(), kthread_pid: safeInt, media_present: fc.boolean(), pvs_rules_active: fc.boolean() },
  { device: str },
);
export const pci: fc.Arbitrary<Pci> = rec({ id: deviceId, position: safeInt, address: pciAddress }, { msitranslate: fc.boolean(), power_mgmt: fc.boolean() });
export const vgpuImplementation = fc.oneof(
  fc.constant('Empty' as const),
  tag('GVT_g', rec({ low_gm_sz: safeInt, high_gm_sz: safeInt, fence_sz: safeInt }, { physical_pci_address: pciAddress, monitor_config_file: str })),
  tag('Nvidia', rec({ virtual_pci_address: pciAddress, extra_args: str }, { physical_pci_address: pciAddress, config_file: str, type_id: str, uuid: str })),
  tag('MxGPU', rec({ vgpus_per_pgpu: safeInt, framebufferbytes: safeInt }, { physical_function: pciAddress })),
);
export const vgpu = rec({ id: deviceId, position: safeInt, physical_pci_address: pciAddress, implementation: vgpuImplementation }, { virtual_pci_address: pciAddress });
export const vusb = fc.record({ id: deviceId, hostbus: str, hostport: str, version: str, path: str, speed: dbl });
export const metadata: fc.Arbitrary<Metadata> = rec(
  { vm, vbds: small(vbd), vifs: small(vif), pcis: small(pci), vgpus: small(vgpu), vusbs: small(vusb) },
  { domains: str },
);
export const errorValue: fc.Arbitrary<ErrorValue> = fc.oneof(
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
export const taskResult = fc.oneof(str, safeInt, small(str));
export const task: fc.Arbitrary<TaskView> = fc.record({
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
export const dynamicId = fc.oneof(
  tag('Vm', nonEmpty),
  ...(['Vbd', 'Vif', 'Pci', 'Vgpu', 'Vusb'] as const).map((k) => tag(k, deviceId)),
  tag('Task', str),
);
export const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
export const dynamicChange = fc.oneof(
  tag('Vm_t', fc.tuple(nonEmpty, maybe(fc.tuple(vm, vmState)))),
  tag('Vbd_t', fc.tuple(deviceId, maybe(fc.tuple(vbd, vbdState)))),
  tag('Vif_t', fc.tuple(deviceId, maybe(fc.tuple(vif, vifState)))),
  tag('Pci_t', fc.tuple(deviceId, maybe(fc.tuple(pci, fc.record({ plugged: fc.boolean() }))))),
  tag('Vgpu_t', fc.tuple(deviceId, maybe(fc.tuple(vgpu, rec({ active: fc.boolean(), plugged: fc.boolean() }, { emulator_pid: safeInt }))))),
  tag('Vusb_t', fc.tuple(deviceId, maybe(fc.tuple(vusb, fc.record({ plugged: fc.boolean() }))))),
  tag('Task_t', fc.tuple(str, maybe(task))),
) as fc.Arbitrary<DynamicChange>;

