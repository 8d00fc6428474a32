import {
  decodeField,
  deviceDneKey,

  Errors,
  parseJsonWire,
  VifT,
  type DeviceEntry,
  type DeviceKind,
  type EventBody,
  type Type,
  type Vbd,
  type Vif,
  type VmAggregate,
} from '@xenops/core';
import type { Atom } from '../../operations/atom.js';

function entryOf<K extends DeviceKind>(vm: VmAggregate, kind: K, dev: string) {
  const entry = vm.devices[kind].get(dev);
  if (!entry) throw Errors.doesNotExist(...deviceDneKey(kind, vm.id, dev));
  return entry;
}

function requireDomain(vm: VmAggregate) {
  if (!vm.domain) throw Errors.domainDoesNotExist(vm.id);
  return vm.domain;
}

/**
 * The disk number a VBD plugs at (§7.6): its explicit position, refused when another plugged VBD
 * holds it; or the smallest number used neither by plugged VBDs nor by the explicit positions of
 * the other VBDs the same operation plugs.
 */
function diskNumberFor(vm: VmAggregate, vbd: Vbd, reserved: readonly number[]): number {
  const used = new Set<number>();
  for (const [dev, e] of vm.devices.vbd) if (e.plugged && dev !== vbd.id[1] && e.diskNumber !== undefined) used.add(e.diskNumber);
  if (vbd.position) {
    const n = vbd.position[1];
    if (used.has(n)) throw Errors.alreadyExists('vbd', String(n));
    return n;
  }
  const own = new Set(reserved);
  let n = 0;
  while (used.has(n) || own.has(n)) n++;
  return n;
}

/** VIFs and PCIs clash on `position` with another plugged device of their kind (§7.6). */
function checkPositionFree(vm: VmAggregate, kind: 'vif' | 'pci', dev: string, position: number): void {
  const table = vm.devices[kind] as ReadonlyMap<string, DeviceEntry<{ position: number }>>;
  for (const [other, e] of table) {
    if (other !== dev && e.plugged && e.config.position === position) throw Errors.alreadyExists(kind, String(position));
  }
}

/** The simulator's device atoms (§7.3, §8.1): plug tables live in the log with the VM. */
export function performDeviceAtom(atom: Atom, vm: VmAggregate): EventBody[] | undefined {
  const vmId = vm.id;
  switch (atom.kind) {
    case 'VBD_set_active':
      entryOf(vm, 'vbd', atom.dev);
      return [{ type: 'DeviceActiveSet', vmId, kind: 'vbd', dev: atom.dev, active: atom.active }];
    case 'VIF_set_active':
      entryOf(vm, 'vif', atom.dev);
      return [{ type: 'DeviceActiveSet', vmId, kind: 'vif', dev: atom.dev, active: atom.active }];
    case 'VBD_epoch_begin':
    case 'VBD_epoch_end':
      entryOf(vm, 'vbd', atom.dev);
      return [];
    case 'VBD_plug': {
      requireDomain(vm);
      const entry = entryOf(vm, 'vbd', atom.dev);
      if (entry.plugged) throw Errors.deviceIsConnected();
      const diskNumber = diskNumberFor(vm, entry.config, atom.reserved.filter((n) => n !== entry.config.position?.[1]));
      return [{ type: 'DevicePlugged', vmId, kind: 'vbd', dev: atom.dev, diskNumber }];
    }
    case 'VIF_plug': {
      requireDomain(vm);
      const entry = entryOf(vm, 'vif', atom.dev);
      if (entry.plugged) throw Errors.deviceIsConnected();
      checkPositionFree(vm, 'vif', atom.dev, entry.config.position);
      return [{ type: 'DevicePlugged', vmId, kind: 'vif', dev: atom.dev }];
    }
    case 'PCI_plug': {
      requireDomain(vm);
      const entry = entryOf(vm, 'pci', atom.dev);
      if (entry.plugged) throw Errors.deviceIsConnected();
      checkPositionFree(vm, 'pci', atom.dev, entry.config.position);
      return [{ type: 'DevicePlugged', vmId, kind: 'pci', dev: atom.dev }];
    }
    case 'VBD_unplug':
    case 'VIF_unplug':
    case 'PCI_unplug': {
      const kind = atom.kind === 'VBD_unplug' ? 'vbd' : atom.kind === 'VIF_unplug' ? 'vif' : 'pci';
      if (!entryOf(vm, kind, atom.dev).plugged) throw Errors.deviceNotConnected();
      return [{ type: 'DeviceUnplugged', vmId, kind, dev: atom.dev }];
    }
    case 'VBD_eject': {
      const { config } = entryOf(vm, 'vbd', atom.dev);
      const { backend: _ejected, ...rest } = config;
      return [{ type: 'DeviceConfigChanged', vmId, device: { kind: 'vbd', config: rest }, reason: 'eject' }];
    }
    case 'VBD_insert': {
      const { config } = entryOf(vm, 'vbd', atom.dev);
      return [{ type: 'DeviceConfigChanged', vmId, device: { kind: 'vbd', config: { ...config, backend: [atom.disk[0], atom.disk[1]] } }, reason: 'insert' }];
    }
    case 'VIF_set': {
      const { config } = entryOf(vm, 'vif', atom.dev);
      const field = VifT.fields.find((f) => f.key === atom.field)!;
      const value = decodeField(field.type as Type<unknown>, parseJsonWire(atom.valueJson), atom.field);
      const next = { ...config, [atom.field]: value } as Vif;
      if (value === undefined) delete (next as Record<string, unknown>)[atom.field];
      return [{ type: 'DeviceConfigChanged', vmId, device: { kind: 'vif', config: next }, reason: `set_${atom.field}` }];
    }
    default:
      return undefined;
  }
}
