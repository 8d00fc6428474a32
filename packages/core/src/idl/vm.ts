/** `Vm.t` (API.md §4.2), its parts, and `Vm.state` (§4.3), with the seed shapes of §4.12. */
import {
  adapt,
  bool,
  dict,
  field,
  float,
  id,
  int,
  int32,
  list,
  option,
  record,
  string,
  structEntries,
  tuple,
  variant,
  type Dialect,
  type Infer,
} from './descriptor.js';
import { DiskT, PowerStateT } from './shared.js';
import { struct } from './wire.js';

/** Fields the seed does not know: emitted by the xenopsd and internal encoders only. */
const NOT_SEED: readonly Dialect[] = ['xenopsd', 'internal'];
/** Fields the xenopsd wire does not know (Vm `transient`). */
const NOT_XENOPSD: readonly Dialect[] = ['internal', 'seed'];

export const ActionT = variant('Vm.action', { Coredump: null, Shutdown: null, Start: null, Pause: null, Softreboot: null });
export type Action = Infer<typeof ActionT>;

/** An action list; the seed has no `Pause` nor `Softreboot`, so they are dropped for it (§4.12). */
export const ActionListT = adapt(list(ActionT), {
  encodeIn: { seed: (v) => v.filter((a) => a !== 'Pause' && a !== 'Softreboot') },
});

export const IgdPassthroughT = variant('Vm.igd_passthrough', { GVT_d: null });

export const VideoCardT = adapt(
  variant('Vm.video_card', { Cirrus: null, Standard_VGA: null, Vgpu: null, IGD_passthrough: IgdPassthroughT }, { default: 'Cirrus' }),
  // The seed knows Cirrus and Standard_VGA only.
  { encodeIn: { seed: (v) => (v === 'Cirrus' ? 'Cirrus' : 'Standard_VGA') } },
);
export type VideoCard = Infer<typeof VideoCardT>;

export const UefiOnBootT = variant('Vm.on_boot', { Persist: null, Reset: null });
export const FirmwareT = variant('Vm.firmware_type', {
  Bios: null,
  Uefi: record('Vm.uefi', {
    on_boot: field(UefiOnBootT, { default: 'Persist' }),
    backend: field(string, { default: 'xapidb' }),
  }),
});
export type Firmware = Infer<typeof FirmwareT>;

export const TpmT = variant('Vm.tpm', { Vtpm: string });

export const HvmInfoT = record('Vm.hvm_info', {
  hap: field(bool, { default: true }),
  shadow_multiplier: field(float, { default: 1.0 }),
  timeoffset: field(string, { default: '' }),
  video_mib: field(int, { default: 4 }),
  video: field(VideoCardT, { default: 'Cirrus' }),
  acpi: field(bool, { default: true }),
  serial: option(string),
  keymap: option(string),
  vnc_ip: option(string),
  pci_emulations: field(list(string), { default: [] }),
  pci_passthrough: field(bool, { default: false }),
  boot_order: field(string, { default: '' }),
  qemu_disk_cmdline: field(bool, { default: false }),
  qemu_stubdom: field(bool, { default: false }),
  firmware: field(FirmwareT, { default: 'Bios', dialects: NOT_SEED }),
  tpm: field(option(TpmT), { dialects: NOT_SEED }),
});
export type HvmInfo = Infer<typeof HvmInfoT>;

export const DirectBootT = record('Vm.direct_boot', {
  kernel: field(string, { default: '' }),
  cmdline: field(string, { default: '' }),
  ramdisk: option(string),
});
export const IndirectBootT = record('Vm.indirect_boot', {
  bootloader: field(string, { default: '' }),
  extra_args: field(string, { default: '' }),
  legacy_args: field(string, { default: '' }),
  bootloader_args: field(string, { default: '' }),
  devices: field(list(DiskT), { default: [] }),
});
export const BootT = variant('Vm.boot', { Direct: DirectBootT, Indirect: IndirectBootT });

export const PvInfoT = record('Vm.pv_info', {
  boot: BootT,
  framebuffer: field(bool, { default: true }),
  framebuffer_ip: field(option(string), { dialects: NOT_SEED }),
  vncterm: field(bool, { default: true }),
  vncterm_ip: option(string),
  pci_passthrough: field(bool, { default: false, dialects: NOT_SEED }),
});
export type PvInfo = Infer<typeof PvInfoT>;

export const BuilderInfoT = adapt(variant('Vm.builder_info', { HVM: HvmInfoT, PV: PvInfoT, PVinPVH: PvInfoT, PVH: PvInfoT }), {
  encodeIn: {
    // The seed has HVM and PV only; PVinPVH and PVH are shown as PV (§4.12).
    seed: (v) => (v[0] === 'HVM' ? ['HVM', HvmInfoT.encode(v[1], 'seed')] : ['PV', PvInfoT.encode(v[1], 'seed')]),
  },
});
export type BuilderInfo = Infer<typeof BuilderInfoT>;

const WeightCapT = record('Vm.priority', { weight: int, cap: int });

/** `(weight, cap)`; the seed's `{weight, cap}` record is accepted in both dialects and emitted for the seed. */
export const PriorityT = adapt(tuple(int, int), {
  name: 'Vm.priority',
  accept: (w, path) => {
    if (!structEntries(w)) return w;
    const r = WeightCapT.decode(w, path);
    return [r.weight, r.cap];
  },
  encodeIn: { seed: ([weight, cap]) => struct([['weight', weight], ['cap', cap]]) },
});

export const SchedulerParamsT = record('Vm.scheduler_params', {
  priority: option(PriorityT),
  affinity: list(list(int)),
});
export type SchedulerParams = Infer<typeof SchedulerParamsT>;

/**
 * `Vm.t`. Field order is the xenopsd order; `transient` (internal, seed) sits where the seed lists
 * it, so the seed encoding comes out with the seed's 21 keys in the seed's order.
 */
export const VmT = record('Vm.t', {
  id,
  name: field(string, { default: 'unnamed' }),
  ssidref: int32,
  xsdata: dict(string),
  platformdata: dict(string),
  bios_strings: dict(string),
  ty: BuilderInfoT,
  suppress_spurious_page_faults: bool,
  machine_address_size: option(int),
  memory_static_max: int,
  memory_dynamic_max: int,
  memory_dynamic_min: int,
  vcpu_max: int,
  vcpus: int,
  scheduler_params: SchedulerParamsT,
  on_crash: ActionListT,
  on_shutdown: ActionListT,
  on_reboot: ActionListT,
  on_softreboot: field(ActionListT, { default: ['Softreboot'], dialects: NOT_SEED }),
  transient: field(bool, { default: false, dialects: NOT_XENOPSD }),
  pci_msitranslate: bool,
  pci_power_mgmt: bool,
  has_vendor_device: field(bool, { default: false, dialects: NOT_SEED }),
  generation_id: field(option(string), { dialects: NOT_SEED }),
});
export type VmConfig = Infer<typeof VmT>;

// ---------------------------------------------------------------------------------------------
// Vm.state (§4.3)

export const ConsoleProtocolT = variant('Vm.console_protocol', { Rfb: null, Vt100: null });

export const ConsoleT = record('Vm.console', {
  protocol: ConsoleProtocolT,
  port: int,
  path: field(string, { default: '', dialects: NOT_SEED }),
});
export type VmConsole = Infer<typeof ConsoleT>;

export const DomainTypeT = variant('Vm.domain_type', {
  Domain_HVM: null,
  Domain_PV: null,
  Domain_PVinPVH: null,
  Domain_PVH: null,
  Domain_undefined: null,
});
export type VmDomainType = Infer<typeof DomainTypeT>;

/**
 * `Vm.state`. Every field is always emitted; on decode an absent field takes its neutral value.
 * The seed shows only its 10 fields.
 */
export const VmStateT = record('Vm.state', {
  power_state: field(PowerStateT, { default: 'Halted' }),
  domids: field(list(int), { default: [] }),
  consoles: field(list(ConsoleT), { default: [] }),
  memory_target: field(int, { default: 0 }),
  memory_actual: field(int, { default: 0, dialects: NOT_SEED }),
  memory_limit: field(int, { default: 0, dialects: NOT_SEED }),
  vcpu_target: field(int, { default: 0 }),
  shadow_multiplier_target: field(float, { default: 1.0 }),
  rtc_timeoffset: field(string, { default: '' }),
  uncooperative_balloon_driver: field(bool, { default: false }),
  guest_agent: field(dict(string), { default: [] }),
  xsdata_state: field(dict(string), { default: [], dialects: NOT_SEED }),
  pv_drivers_detected: field(bool, { default: false, dialects: NOT_SEED }),
  last_start_time: field(float, { default: 0 }),
  hvm: field(bool, { default: false, dialects: NOT_SEED }),
  nomigrate: field(bool, { default: false, dialects: NOT_SEED }),
  nested_virt: field(bool, { default: false, dialects: NOT_SEED }),
  domain_type: field(DomainTypeT, { default: 'Domain_undefined', dialects: NOT_SEED }),
  featureset: field(string, { default: '', dialects: NOT_SEED }),
  numa_optimised: field(bool, { default: false, dialects: NOT_SEED }),
  numa_nodes: field(int, { default: 0, dialects: NOT_SEED }),
  numa_node_memory: field(list(tuple(int, int)), { default: [], dialects: NOT_SEED }),
});
export type VmState = Infer<typeof VmStateT>;
