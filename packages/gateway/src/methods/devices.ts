import {
  adjustVbdPosition,
  deviceDneKey,
  encodeField,
  Errors,
  normaliseDevice,
  VifT,
  wireToJson,
  XenopsError,
  type DeviceConfig,
  type DeviceConfigs,
  type DeviceId,
  type DeviceKind,
  type Operation,
  type Vbd,
  type VifSettableField,
  type XenopsdMethods,
} from '@xenops/core';
import { ArgumentError } from '../dispatch/args.js';
import { readView } from '../read-model/history.js';
import { devicePair, type DevicePairs } from '../read-model/device-views.js';
import type { CallContext, SomeHandlers } from './method.js';
import { refuseQuarantined, sendToOwner, submitOperation } from './vm-calls.js';

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
function deviceTask<A extends { readonly id: DeviceId }>(kind: DeviceKind, toOperation: (dev: string, a: A) => Operation) {
  return async (call: CallContext, a: A): Promise<string> => {
    requireDevice(call, kind, a.id);
    return submitOperation(call, a.id[0], toOperation(a.id[1], a));
  };
}

async function statDevice<K extends DeviceKind>(call: CallContext, kind: K, [vmId, dev]: DeviceId, asOf: number | undefined): Promise<DevicePairs[K]> {
  const view = await readView(call.gateway, asOf);
  const vm = view.vms.get(vmId);
  const entry = vm?.devices[kind].get(dev);
  if (!vm || !entry) throw Errors.doesNotExist(...deviceDneKey(kind, vmId, dev));
  return devicePair(kind, entry, vm);
}

async function listDevices<K extends DeviceKind>(call: CallContext, kind: K, vmId: string, asOf: number | undefined): Promise<Array<DevicePairs[K]>> {
  const view = await readView(call.gateway, asOf);
  const vm = view.vms.get(vmId);
  if (!vm) return [];
  return [...vm.devices[kind]].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, e]) => devicePair(kind, e, vm));
}

async function removeDevice(call: CallContext, kind: DeviceKind, [vmId, dev]: DeviceId): Promise<null> {
  requireDevice(call, kind, [vmId, dev]);
  await sendToOwner(call, vmId, { type: 'RemoveDevice', vmId, kind, dev }, { orAnyAgent: true });
  return null;
}

/** VIF.move and VIF.set_*: one field of the stored Vif.t, and of the live device if plugged (§7.6). */
function vifSetter<F extends VifSettableField, A extends { readonly id: DeviceId }>(field: F, valueOf: (a: A) => DeviceConfigs['vif'][F]) {
  return deviceTask<A>('vif', (dev, a) => {
    const fieldType = VifT.fields.find((f) => f.key === field)!.type;
    const wire = encodeField(fieldType, valueOf(a), 'internal');
    return { kind: 'VIF.set', dev, field, valueJson: wire === undefined ? 'null' : wireToJson(wire) };
  });
}

/**
 * A seed-style integer position depends on the VM being HVM (§4.12): the record is decoded by its
 * type, and the position read again from the wire with that context.
 */
async function addVbd(call: CallContext, vbd: Vbd): Promise<DeviceId> {
  const vm = call.gateway.projection.vms.get(vbd.id[0]);
  return addDevice(call, { kind: 'vbd', config: adjustVbdPosition(vbd, call.wireArgument('vbd'), { vmIsHvm: vm?.config?.ty[0] === 'HVM' }) });
}

/** VBD.*, VIF.*, PCI.*, VGPU.*, VUSB.* (API.md §5.2, §7.6). */
export const deviceHandlers = {
  'VBD.add': (call, a) => addVbd(call, a.vbd),
  'VBD.plug': deviceTask('vbd', (dev) => ({ kind: 'VBD.plug', dev })),
  'VBD.unplug': deviceTask('vbd', (dev, a) => ({ kind: 'VBD.unplug', dev, force: a.force })),
  'VBD.eject': deviceTask('vbd', (dev) => ({ kind: 'VBD.eject', dev })),
  'VBD.insert': deviceTask('vbd', (dev, a) => ({ kind: 'VBD.insert', dev, disk: a.disk })),
  'VBD.stat': (call, a) => statDevice(call, 'vbd', a.id, a.as_of),
  'VBD.list': (call, a) => listDevices(call, 'vbd', a.id, a.as_of),
  'VBD.remove': (call, a) => removeDevice(call, 'vbd', a.id),

  'VIF.add': (call, a) => addDevice(call, { kind: 'vif', config: a.vif }),
  'VIF.plug': deviceTask('vif', (dev) => ({ kind: 'VIF.plug', dev })),
  'VIF.unplug': deviceTask('vif', (dev, a) => ({ kind: 'VIF.unplug', dev, force: a.force })),
  'VIF.move': vifSetter('backend', (a) => a.network),
  'VIF.set_carrier': vifSetter('carrier', (a) => a.carrier),
  'VIF.set_locking_mode': vifSetter('locking_mode', (a) => a.locking_mode),
  'VIF.set_ipv4_configuration': vifSetter('ipv4_configuration', (a) => a.ipv4_configuration),
  'VIF.set_ipv6_configuration': vifSetter('ipv6_configuration', (a) => a.ipv6_configuration),
  'VIF.set_pvs_proxy': vifSetter('pvs_proxy', (a) => a.proxy),
  'VIF.set_trunks': vifSetter('trunks', (a) => a.trunks),
  'VIF.stat': (call, a) => statDevice(call, 'vif', a.id, a.as_of),
  'VIF.list': (call, a) => listDevices(call, 'vif', a.id, a.as_of),
  'VIF.remove': (call, a) => removeDevice(call, 'vif', a.id),

  'PCI.add': (call, a) => addDevice(call, { kind: 'pci', config: a.pci }),
  'PCI.stat': (call, a) => statDevice(call, 'pci', a.id, a.as_of),
  'PCI.list': (call, a) => listDevices(call, 'pci', a.id, a.as_of),
  'PCI.remove': (call, a) => removeDevice(call, 'pci', a.id),
  // The simulator has no quarantine to leave (§8.1).
  'PCI.dequarantine': async () => null,

  'VGPU.add': (call, a) => addDevice(call, { kind: 'vgpu', config: a.vgpu }),
  'VGPU.stat': (call, a) => statDevice(call, 'vgpu', a.id, a.as_of),
  'VGPU.list': (call, a) => listDevices(call, 'vgpu', a.id, a.as_of),
  'VGPU.remove': (call, a) => removeDevice(call, 'vgpu', a.id),

  'VUSB.add': (call, a) => addDevice(call, { kind: 'vusb', config: a.vusb }),
  'VUSB.stat': (call, a) => statDevice(call, 'vusb', a.id, a.as_of),
  'VUSB.list': (call, a) => listDevices(call, 'vusb', a.id, a.as_of),
  'VUSB.remove': (call, a) => removeDevice(call, 'vusb', a.id),
  // Plugging VUSBs is later work (§4.7): these two stay Unimplemented.
  'VUSB.plug': 'Unimplemented',
  'VUSB.unplug': 'Unimplemented',
} satisfies SomeHandlers<XenopsdMethods>;
