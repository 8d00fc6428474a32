/** Device types: VBD (§4.4), VIF (§4.5), PCI (§4.6), VGPU and VUSB (§4.7), with the seed shapes of §4.12. */
import {
  adapt,
  bool,
  dict,
  field,
  float,
  int,
  list,
  lookupKey,
  option,
  record,
  string,
  structEntries,
  tuple,
  variant,
  type Dialect,
  type Infer,
} from './descriptor.js';
import { DeviceIdT, DeviceNumberT, DiskT, NetworkT, PciAddressT, isBareDiskNumber } from './shared.js';
import { struct, type WireOut, type WireStruct } from './wire.js';

const NOT_SEED: readonly Dialect[] = ['xenopsd', 'internal'];

// ---------------------------------------------------------------------------------------------
// VBD

export const VbdModeT = variant('Vbd.mode', { ReadOnly: null, ReadWrite: null });

export const VbdTyT = adapt(variant('Vbd.ty', { CDROM: null, Disk: null, Floppy: null }), {
  // The seed has no Floppy.
  encodeIn: { seed: (v) => (v === 'CDROM' ? 'CDROM' : 'Disk') },
});

export const QosClassT = variant('Vbd.qos_class', { Highest: null, High: null, Normal: null, Low: null, Lowest: null, Other: int });
export const QosSchedulerT = variant('Vbd.qos_scheduler', { RealTime: QosClassT, Idle: null, BestEffort: QosClassT });
export const QosT = variant('Vbd.qos', { Ionice: QosSchedulerT });
export type Qos = Infer<typeof QosT>;

/** A VBD's position: a Device_number; the seed shows (and may send) just its disk number. */
export const VbdPositionT = adapt(DeviceNumberT, { encodeIn: { seed: (v) => v[1] } });

export const VbdT = record('Vbd.t', {
  id: DeviceIdT,
  position: option(VbdPositionT),
  mode: field(VbdModeT, { default: 'ReadWrite' }),
  backend: option(DiskT),
  ty: field(VbdTyT, { default: 'Disk' }),
  unpluggable: field(bool, { default: true }),
  extra_backend_keys: field(dict(string), { default: [] }),
  extra_private_keys: field(dict(string), { default: [] }),
  qos: option(QosT),
  persistent: field(bool, { default: true, dialects: NOT_SEED }),
  can_attach_early: field(bool, { default: false, dialects: NOT_SEED }),
});
export type Vbd = Infer<typeof VbdT>;

export interface VbdDecodeContext {
  /** The VBD's VM is HVM: a seed integer position n < 4 then means `["Ide", n, 0]` (§4.12). */
  readonly vmIsHvm: boolean;
}

/**
 * Decodes a `Vbd.t` knowing its VM. A bare integer position n (the seed's shape) is
 * `["Ide", n, 0]` when the VM is HVM and n < 4, else `["Xen", n, 0]` (which is all `VbdT.decode`
 * can do on its own).
 */
export function decodeVbd(w: unknown, path: string, ctx: VbdDecodeContext): Vbd {
  return adjustVbdPosition(VbdT.decode(w, path), w, ctx);
}

/** The HVM rule of `decodeVbd` for a `Vbd.t` already decoded from the wire value `w`. */
export function adjustVbdPosition(vbd: Vbd, w: unknown, ctx: VbdDecodeContext): Vbd {
  if (ctx.vmIsHvm && vbd.position && isBareDiskNumber(lookupKey(w, 'position')) && vbd.position[1] < 4) {
    return { ...vbd, position: ['Ide', vbd.position[1], 0] };
  }
  return vbd;
}

export const VbdStateT = record('Vbd.state', {
  active: field(bool, { default: false }),
  plugged: field(bool, { default: false }),
  qos_target: option(QosT),
  backend_present: option(DiskT),
});
export type VbdState = Infer<typeof VbdStateT>;

// ---------------------------------------------------------------------------------------------
// VIF

const RateRecordT = record('Vif.rate', { kbytes_per_sec: int, timeslice_us: int });

/** `(kbytes_per_sec, timeslice_us)`; the seed's record form is accepted in both dialects and emitted for the seed. */
export const VifRateT = adapt(tuple(int, int), {
  name: 'Vif.rate',
  accept: (w, path) => {
    if (!structEntries(w)) return w;
    const r = RateRecordT.decode(w, path);
    return [r.kbytes_per_sec, r.timeslice_us];
  },
  encodeIn: { seed: ([k, t]) => struct([['kbytes_per_sec', k], ['timeslice_us', t]]) },
});

export const LockingModeT = variant('Vif.locking_mode', {
  Unlocked: null,
  Disabled: null,
  Locked: record('Vif.locked_addresses', {
    ipv4: field(list(string), { default: [] }),
    ipv6: field(list(string), { default: [] }),
  }),
});
export type LockingMode = Infer<typeof LockingModeT>;

/** `[cidrs, gateway option]`: the gateway is an option in a tuple, so `[]`/`[x]` on the wire. */
export const Ipv4ConfigurationT = variant('Vif.ipv4_configuration', {
  Unspecified4: null,
  Static4: tuple(list(string), option(string)),
  DHCP4: null,
});
export type Ipv4Configuration = Infer<typeof Ipv4ConfigurationT>;

export const Ipv6ConfigurationT = variant('Vif.ipv6_configuration', {
  Unspecified6: null,
  Static6: tuple(list(string), option(string)),
  Autoconf6: null,
});
export type Ipv6Configuration = Infer<typeof Ipv6ConfigurationT>;

export const PvsServerT = record('Vif.PVS_proxy.server', { addresses: list(string), first_port: int, last_port: int });
/** `(site, servers, interface)`. */
export const PvsProxyT = tuple(string, list(PvsServerT), string);
export type PvsProxy = Infer<typeof PvsProxyT>;

export const VifT = record('Vif.t', {
  id: DeviceIdT,
  position: field(int, { default: 0 }),
  mac: field(string, { default: 'fe:ff:ff:ff:ff:ff' }),
  carrier: field(bool, { default: true }),
  mtu: field(int, { default: 1500 }),
  rate: option(VifRateT),
  backend: field(NetworkT, { default: ['Local', 'xenbr0'] }),
  other_config: field(dict(string), { default: [] }),
  locking_mode: field(LockingModeT, { default: 'Unlocked', dialects: NOT_SEED }),
  extra_private_keys: field(dict(string), { default: [] }),
  ipv4_configuration: field(Ipv4ConfigurationT, { default: 'Unspecified4', dialects: NOT_SEED }),
  ipv6_configuration: field(Ipv6ConfigurationT, { default: 'Unspecified6', dialects: NOT_SEED }),
  pvs_proxy: field(option(PvsProxyT), { dialects: NOT_SEED }),
  vlan: field(option(int), { dialects: NOT_SEED }),
  trunks: field(list(int), { default: [], dialects: NOT_SEED }),
});
export type Vif = Infer<typeof VifT>;

export const VifStateT = record('Vif.state', {
  active: field(bool, { default: false }),
  plugged: field(bool, { default: false }),
  kthread_pid: field(int, { default: 0 }),
  media_present: field(bool, { default: false }),
  device: option(string),
  pvs_rules_active: field(bool, { default: false }),
});
export type VifState = Infer<typeof VifStateT>;

// ---------------------------------------------------------------------------------------------
// PCI

const PCI_ADDRESS_KEYS = ['domain', 'bus', 'dev', 'fn'] as const;

const PciBaseT = record('Pci.t', {
  id: DeviceIdT,
  position: int,
  address: PciAddressT,
  msitranslate: option(bool),
  power_mgmt: option(bool),
});
export type Pci = Infer<typeof PciBaseT>;

/** Reads the seed's flat `domain, bus, dev, fn` keys as the nested `address` (when `address` is absent). */
function nestFlatAddress(w: unknown): unknown {
  const entries = structEntries(w);
  if (!entries || lookupKey(w, 'address') !== undefined) return w;
  if (PCI_ADDRESS_KEYS.every((k) => lookupKey(w, k) === undefined)) return w;
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of entries) out[k] = v;
  const address = Object.create(null) as Record<string, unknown>;
  for (const k of PCI_ADDRESS_KEYS) {
    const v = lookupKey(w, k);
    if (v !== undefined) address[k] = v;
  }
  out['address'] = address;
  return out;
}

function encodeFlatPci(v: Pci): WireOut {
  const m: WireStruct = new Map();
  m.set('id', DeviceIdT.encode(v.id, 'seed'));
  m.set('position', v.position);
  for (const k of PCI_ADDRESS_KEYS) m.set(k, v.address[k]);
  if (v.msitranslate !== undefined) m.set('msitranslate', v.msitranslate);
  if (v.power_mgmt !== undefined) m.set('power_mgmt', v.power_mgmt);
  return m;
}

export const PciT = adapt(PciBaseT, { accept: nestFlatAddress, encodeIn: { seed: encodeFlatPci } });

export const PciStateT = record('Pci.state', { plugged: field(bool, { default: false }) });
export type PciState = Infer<typeof PciStateT>;

// ---------------------------------------------------------------------------------------------
// VGPU and VUSB (§4.7)

export const GvtgT = record('Vgpu.gvt_g', {
  physical_pci_address: option(PciAddressT),
  low_gm_sz: int,
  high_gm_sz: int,
  fence_sz: int,
  monitor_config_file: option(string),
});
export const NvidiaT = record('Vgpu.nvidia', {
  physical_pci_address: option(PciAddressT),
  config_file: option(string),
  virtual_pci_address: field(PciAddressT, { default: { domain: 0, bus: 0, dev: 11, fn: 0 } }),
  type_id: option(string),
  uuid: option(string),
  extra_args: field(string, { default: '' }),
});
export const MxgpuT = record('Vgpu.mxgpu', {
  physical_function: option(PciAddressT),
  vgpus_per_pgpu: int,
  framebufferbytes: int,
});
export const VgpuImplementationT = variant(
  'Vgpu.implementation',
  { GVT_g: GvtgT, Nvidia: NvidiaT, MxGPU: MxgpuT, Empty: null },
  { default: 'Empty' },
);
export type VgpuImplementation = Infer<typeof VgpuImplementationT>;

export const VgpuT = record('Vgpu.t', {
  id: DeviceIdT,
  position: field(int, { default: 0 }),
  virtual_pci_address: option(PciAddressT),
  physical_pci_address: field(PciAddressT, { default: { domain: 0, bus: 0, dev: 0, fn: 0 } }),
  implementation: field(VgpuImplementationT, { default: 'Empty' }),
});
export type Vgpu = Infer<typeof VgpuT>;

export const VgpuStateT = record('Vgpu.state', {
  active: field(bool, { default: false }),
  plugged: field(bool, { default: false }),
  emulator_pid: option(int),
});
export type VgpuState = Infer<typeof VgpuStateT>;

export const VusbT = record('Vusb.t', {
  id: DeviceIdT,
  hostbus: string,
  hostport: string,
  version: string,
  path: string,
  speed: float,
});
export type Vusb = Infer<typeof VusbT>;

export const VusbStateT = record('Vusb.state', { plugged: field(bool, { default: false }) });
export type VusbState = Infer<typeof VusbStateT>;
