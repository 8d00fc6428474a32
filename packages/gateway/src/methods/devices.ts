import {
  any,
  bool,
  decodeVbd,
  deviceDneKey,
  DeviceIdT,
  DiskT,
  encodeField,
  Errors,
  Ipv4ConfigurationT,
  Ipv6ConfigurationT,
  list,
  LockingModeT,
  NetworkT,
  option,
  PciAddressT,
  PciStateT,
  PciT,
  PvsProxyT,
  string,
  tuple,
  unit,
  VbdStateT,
  VbdT,
  VgpuStateT,
  VgpuT,
  VifStateT,
  VifT,
  VmIdT,
  VusbStateT,
  VusbT,
  int,
  normaliseDevice,
  wireToJson,
  XenopsError,
  type AnyType,
  type DeviceConfig,
  type DeviceKind,
  type Operation,
  type Vif,
  type VifSettableField,
} from '@xenops/core';
import { ArgumentError, type ArgSpec } from '../dispatch/args.js';
import { readView } from '../read-model/history.js';
import { devicePair } from '../read-model/device-views.js';
import { method, type CallContext, type MethodSpec } from './method.js';
import { refuseQuarantined, sendToOwner, submitOperation } from './vm-calls.js';

const deviceId: ArgSpec = { key: 'id', type: DeviceIdT };
const asOf: ArgSpec = { key: 'as_of', type: option(int), namedOnly: true };

const MODULES: Record<DeviceKind, { module: string; config: AnyType; state: AnyType }> = {
  vbd: { module: 'VBD', config: VbdT, state: VbdStateT },
  vif: { module: 'VIF', config: VifT, state: VifStateT },
  pci: { module: 'PCI', config: PciT, state: PciStateT },
  vgpu: { module: 'VGPU', config: VgpuT, state: VgpuStateT },
  vusb: { module: 'VUSB', config: VusbT, state: VusbStateT },
};

type DeviceId = [string, string];

/** Bad values inside an otherwise well-formed device record are argument errors too. */
function argumentError(e: unknown): never {
  if (e instanceof XenopsError && !(e instanceof ArgumentError)) throw new ArgumentError(e.value);
  throw e;
}

/** Stores a device record (§7.6): the VM must exist; an existing record with that id is overwritten. */
async function addDevice(call: CallContext, raw: DeviceConfig): Promise<DeviceId> {
  const [vmId, dev] = raw.config.id;
  if (dev === '') throw new ArgumentError(['Internal_error', 'invalid id']);
  let device: DeviceConfig;
  try {
    device = normaliseDevice(raw);
  } catch (e) {
    argumentError(e);
  }
  refuseQuarantined(call, vmId);
  if (!call.gateway.projection.vms.get(vmId)?.config) throw Errors.doesNotExist('VM', vmId);
  return (await sendToOwner(call, vmId, { type: 'AddDevice', device: device! }, { orAnyAgent: true })) as DeviceId;
}

function requireDevice(call: CallContext, kind: DeviceKind, [vmId, dev]: DeviceId) {
  refuseQuarantined(call, vmId);
  const entry = call.gateway.projection.vms.get(vmId)?.devices[kind].get(dev);
  if (!entry) throw Errors.doesNotExist(...deviceDneKey(kind, vmId, dev));
  return entry;
}

/** A **T** device call: the device must exist (an error of the call), then it queues on its VM. */
function deviceTask(name: string, kind: DeviceKind, args: readonly ArgSpec[], toOperation: (dev: string, a: Record<string, unknown>) => Operation): MethodSpec {
  return method(name, [deviceId, ...args], string, async (call, a) => {
    const id = a.id as DeviceId;
    requireDevice(call, kind, id);
    return submitOperation(call, id[0], toOperation(id[1], a));
  });
}

/** stat / list / remove, alike for every kind (§5.2). */
function commonMethods(kind: DeviceKind): MethodSpec[] {
  const { module, config, state } = MODULES[kind];
  const PairT = tuple(config, state);
  return [
    method(`${module}.stat`, [deviceId, asOf], PairT, async (call, a) => {
      const [vmId, dev] = a.id as DeviceId;
      const view = await readView(call.gateway, a.as_of as number | undefined);
      const vm = view.vms.get(vmId);
      const entry = vm?.devices[kind].get(dev);
      if (!vm || !entry) throw Errors.doesNotExist(...deviceDneKey(kind, vmId, dev));
      return devicePair(kind, entry, vm);
    }),
    method(`${module}.list`, [{ key: 'id', type: VmIdT }, asOf], list(PairT), async (call, a) => {
      const view = await readView(call.gateway, a.as_of as number | undefined);
      const vm = view.vms.get(a.id as string);
      if (!vm) return [];
      return [...vm.devices[kind]].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, e]) => devicePair(kind, e, vm));
    }),
    method(`${module}.remove`, [deviceId], unit, async (call, a) => {
      const [vmId, dev] = a.id as DeviceId;
      requireDevice(call, kind, [vmId, dev]);
      await sendToOwner(call, vmId, { type: 'RemoveDevice', vmId, kind, dev }, { orAnyAgent: true });
      return null;
    }),
  ];
}

/** VIF.move and VIF.set_*: one field of the stored Vif.t, and of the live device if plugged (§7.6). */
function vifSetter(name: string, field: VifSettableField, key: string, type: AnyType): MethodSpec {
  return deviceTask(name, 'vif', [{ key, type }], (dev, a) => {
    const fieldType = VifT.fields.find((f) => f.key === field)!.type;
    const wire = encodeField(fieldType, a[key] as never, 'internal');
    return { kind: 'VIF.set', dev, field, valueJson: wire === undefined ? 'null' : wireToJson(wire) };
  });
}

async function addVbd(call: CallContext, raw: unknown): Promise<DeviceId> {
  // A seed-style integer position depends on the VM being HVM (§4.12), so decode with that context.
  const vmId = Array.isArray((raw as { id?: unknown })?.id) ? String(((raw as { id: unknown[] }).id)[0]) : '';
  const vm = call.gateway.projection.vms.get(vmId);
  let vbd;
  try {
    vbd = decodeVbd(raw, 'vbd', { vmIsHvm: vm?.config?.ty[0] === 'HVM' });
  } catch (e) {
    argumentError(e);
  }
  return addDevice(call, { kind: 'vbd', config: vbd! });
}

/** VBD.*, VIF.*, PCI.*, VGPU.*, VUSB.* (API.md §5.2, §7.6). */
export const deviceMethods: readonly MethodSpec[] = [
  method('VBD.add', [{ key: 'vbd', type: any }], DeviceIdT, (call, a) => addVbd(call, a.vbd)),
  deviceTask('VBD.plug', 'vbd', [], (dev) => ({ kind: 'VBD.plug', dev })),
  deviceTask('VBD.unplug', 'vbd', [{ key: 'force', type: bool }], (dev, a) => ({ kind: 'VBD.unplug', dev, force: a.force as boolean })),
  deviceTask('VBD.eject', 'vbd', [], (dev) => ({ kind: 'VBD.eject', dev })),
  deviceTask('VBD.insert', 'vbd', [{ key: 'disk', type: DiskT }], (dev, a) => ({
    kind: 'VBD.insert',
    dev,
    disk: a.disk as readonly ['Local' | 'VDI', string],
  })),
  ...commonMethods('vbd'),

  method('VIF.add', [{ key: 'vif', type: VifT }], DeviceIdT, (call, a) => addDevice(call, { kind: 'vif', config: a.vif as Vif })),
  deviceTask('VIF.plug', 'vif', [], (dev) => ({ kind: 'VIF.plug', dev })),
  deviceTask('VIF.unplug', 'vif', [{ key: 'force', type: bool }], (dev, a) => ({ kind: 'VIF.unplug', dev, force: a.force as boolean })),
  vifSetter('VIF.move', 'backend', 'network', NetworkT),
  vifSetter('VIF.set_carrier', 'carrier', 'carrier', bool),
  vifSetter('VIF.set_locking_mode', 'locking_mode', 'locking_mode', LockingModeT),
  vifSetter('VIF.set_ipv4_configuration', 'ipv4_configuration', 'ipv4_configuration', Ipv4ConfigurationT),
  vifSetter('VIF.set_ipv6_configuration', 'ipv6_configuration', 'ipv6_configuration', Ipv6ConfigurationT),
  vifSetter('VIF.set_pvs_proxy', 'pvs_proxy', 'proxy', option(PvsProxyT)),
  vifSetter('VIF.set_trunks', 'trunks', 'trunks', list(int)),
  ...commonMethods('vif'),

  method('PCI.add', [{ key: 'pci', type: PciT }], DeviceIdT, (call, a) =>
    addDevice(call, { kind: 'pci', config: a.pci as Extract<DeviceConfig, { kind: 'pci' }>['config'] }),
  ),
  ...commonMethods('pci'),
  // The simulator has no quarantine to leave (§8.1).
  method('PCI.dequarantine', [{ key: 'pci_addr', type: PciAddressT }], unit, async () => null),

  method('VGPU.add', [{ key: 'vgpu', type: VgpuT }], DeviceIdT, (call, a) =>
    addDevice(call, { kind: 'vgpu', config: a.vgpu as Extract<DeviceConfig, { kind: 'vgpu' }>['config'] }),
  ),
  ...commonMethods('vgpu'),

  method('VUSB.add', [{ key: 'vusb', type: VusbT }], DeviceIdT, (call, a) =>
    addDevice(call, { kind: 'vusb', config: a.vusb as Extract<DeviceConfig, { kind: 'vusb' }>['config'] }),
  ),
  ...commonMethods('vusb'),
  // Plugging VUSBs is later work (§4.7): these two stay Unimplemented.
  method('VUSB.plug', [], undefined),
  method('VUSB.unplug', [], undefined),
];
