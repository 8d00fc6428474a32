import type { Pci, Vbd, Vif } from '../idl/index.js';
import type { VmAggregate } from '../model/vm-aggregate.js';
import type { Atom } from './atom.js';

const byName = <T extends { config: { id: readonly [string, string] } }>(a: T, b: T) =>
  a.config.id[1] < b.config.id[1] ? -1 : a.config.id[1] > b.config.id[1] ? 1 : 0;

/** The disk number of an explicit VBD position (the `disk` of `[bus, disk, partition]`). */
export function explicitDiskNumber(vbd: Vbd): number | undefined {
  return vbd.position ? vbd.position[1] : undefined;
}

export function vbdPlugAtoms(vbd: Vbd, reserved: readonly number[]): Atom[] {
  const dev = vbd.id[1];
  return [
    { kind: 'VBD_set_active', dev, active: true },
    ...(vbd.backend ? [{ kind: 'VBD_epoch_begin', dev } as const] : []),
    { kind: 'VBD_plug', dev, reserved },
  ];
}

export function vifPlugAtoms(vif: Vif): Atom[] {
  return [
    { kind: 'VIF_set_active', dev: vif.id[1], active: true },
    { kind: 'VIF_plug', dev: vif.id[1] },
  ];
}

/**
 * plug-devices (§7.3): every ReadWrite VBD, then every ReadOnly VBD; VIFs by ascending position
 * (ties by name). Auto-numbered VBDs avoid the explicit positions of the others plugged here, so
 * the result does not depend on the order.
 */
export function plugDevicesAtoms(vm: VmAggregate): Atom[] {
  const vbds = [...vm.devices.vbd.values()].sort(byName);
  const reserved = vbds.map((e) => explicitDiskNumber(e.config)).filter((n): n is number => n !== undefined);
  const rw = vbds.filter((e) => e.config.mode === 'ReadWrite');
  const ro = vbds.filter((e) => e.config.mode === 'ReadOnly');
  const vifs = [...vm.devices.vif.values()].sort((a, b) => a.config.position - b.config.position || byName(a, b));
  return [...[...rw, ...ro].flatMap((e) => vbdPlugAtoms(e.config, reserved)), ...vifs.flatMap((e) => vifPlugAtoms(e.config))];
}

/** plug-pcis (§7.3): one by one, ascending position, after the device model. */
export function plugPcisAtoms(vm: VmAggregate): Atom[] {
  const pcis: Pci[] = [...vm.devices.pci.values()].map((e) => e.config).sort((a, b) => a.position - b.position || (a.id[1] < b.id[1] ? -1 : 1));
  return pcis.map((p) => ({ kind: 'PCI_plug', dev: p.id[1] }) as const);
}

/**
 * teardown (§7.3): pause (best effort), stop the device model, unplug what is plugged, destroy the
 * domain, then deactivate every VBD (ending its epoch) and every VIF, plugged or not.
 */
export function teardownAtoms(vm: VmAggregate): Atom[] {
  const vbds = [...vm.devices.vbd.values()].sort(byName);
  const vifs = [...vm.devices.vif.values()].sort(byName);
  const pcis = [...vm.devices.pci.values()].sort(byName);
  return [
    { kind: 'VM_pause', bestEffort: true },
    { kind: 'VM_destroy_device_model' },
    ...vbds.filter((e) => e.plugged).map((e) => ({ kind: 'VBD_unplug', dev: e.config.id[1], force: true }) as const),
    ...vifs.filter((e) => e.plugged).map((e) => ({ kind: 'VIF_unplug', dev: e.config.id[1], force: true }) as const),
    ...pcis.filter((e) => e.plugged).map((e) => ({ kind: 'PCI_unplug', dev: e.config.id[1] }) as const),
    { kind: 'VM_destroy' },
    ...vbds.flatMap((e): Atom[] => [
      ...(e.config.backend ? [{ kind: 'VBD_epoch_end', dev: e.config.id[1] } as const] : []),
      { kind: 'VBD_set_active', dev: e.config.id[1], active: false },
    ]),
    ...vifs.map((e) => ({ kind: 'VIF_set_active', dev: e.config.id[1], active: false }) as const),
  ];
}
