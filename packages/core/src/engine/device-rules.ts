import { Errors } from '../errors.js';
import type { Vbd } from '../idl/index.js';
import { deviceDneKey, type DeviceEntry, type DeviceKind } from '../model/devices.js';
import type { VmAggregate } from '../model/vm-aggregate.js';

/** The VM's device `dev` of `kind`; `Does_not_exist` (§6.2) when there is none. */
export function entryOf<K extends DeviceKind>(vm: VmAggregate, kind: K, dev: string) {
  const entry = vm.devices[kind].get(dev);
  if (!entry) throw Errors.doesNotExist(...deviceDneKey(kind, vm.id, dev));
  return entry;
}

/**
 * The disk number a VBD plugs at (§7.6): its explicit position, refused when another plugged VBD
 * holds it; or the smallest number used neither by plugged VBDs nor by the explicit positions of
 * the other VBDs the same operation plugs (`reserved`), so that concurrent plugs give the same
 * result in any order.
 */
export function diskNumberFor(vm: VmAggregate, vbd: Vbd, reserved: readonly number[]): number {
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
export function positionClash(vm: VmAggregate, kind: 'vif' | 'pci', dev: string, position: number): void {
  const table = vm.devices[kind] as ReadonlyMap<string, DeviceEntry<{ position: number }>>;
  for (const [other, e] of table) {
    if (other !== dev && e.plugged && e.config.position === position) throw Errors.alreadyExists(kind, String(position));
  }
}
