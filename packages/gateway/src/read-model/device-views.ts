import type { DeviceConfigs, DeviceEntry, DeviceKind, Pci, PciState, Vbd, VbdState, Vgpu, VgpuState, Vif, VifState, VmAggregate, Vusb, VusbState } from '@xenops/core';

/** Vbd.state (§4.4): what is plugged shows its QoS and medium. */
export function vbdStateOf(e: DeviceEntry<Vbd>): VbdState {
  if (!e.plugged) return { active: e.active, plugged: false };
  return {
    active: e.active,
    plugged: true,
    ...(e.config.qos ? { qos_target: e.config.qos } : {}),
    ...(e.config.backend ? { backend_present: e.config.backend } : {}),
  };
}

/** Vif.state (§4.5, §8.1): a plugged VIF is `vif<domid>.<position>` with its medium present. */
export function vifStateOf(e: DeviceEntry<Vif>, vm: VmAggregate): VifState {
  if (!e.plugged || !vm.domain) return { active: e.active, plugged: false, kthread_pid: 0, media_present: false, pvs_rules_active: false };
  return {
    active: e.active,
    plugged: true,
    kthread_pid: 0,
    media_present: true,
    device: `vif${vm.domain.domid}.${e.config.position}`,
    pvs_rules_active: false,
  };
}

export function pciStateOf(e: DeviceEntry<Pci>): PciState {
  return { plugged: e.plugged };
}

/** VGPUs and VUSBs are stored only (§4.7): always the unplugged state. */
export function vgpuStateOf(_e: DeviceEntry<Vgpu>): VgpuState {
  return { active: false, plugged: false };
}

export function vusbStateOf(_e: DeviceEntry<Vusb>): VusbState {
  return { plugged: false };
}

/** The `[config, state]` pair of each kind of device. */
export interface DevicePairs {
  vbd: [Vbd, VbdState];
  vif: [Vif, VifState];
  pci: [Pci, PciState];
  vgpu: [Vgpu, VgpuState];
  vusb: [Vusb, VusbState];
}

/** The `[config, state]` pair a device's `stat` returns. */
export function devicePair<K extends DeviceKind>(kind: K, e: DeviceEntry<DeviceConfigs[K]>, vm: VmAggregate): DevicePairs[K] {
  // The state's type follows `kind`, which TypeScript does not narrow K from: the one cast.
  return [e.config, stateOf(kind, e, vm)] as DevicePairs[K];
}

function stateOf(kind: DeviceKind, e: DeviceEntry<unknown>, vm: VmAggregate): unknown {
  switch (kind) {
    case 'vbd':
      return vbdStateOf(e as DeviceEntry<Vbd>);
    case 'vif':
      return vifStateOf(e as DeviceEntry<Vif>, vm);
    case 'pci':
      return pciStateOf(e as DeviceEntry<Pci>);
    case 'vgpu':
      return vgpuStateOf(e as DeviceEntry<Vgpu>);
    case 'vusb':
      return vusbStateOf(e as DeviceEntry<Vusb>);
  }
}
