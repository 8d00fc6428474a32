/** Example VM configurations (§10 of API.md, seed shape of §4.12) with unique ids. */
import { randomUUID } from 'node:crypto';

/** A unique VM id; the tag keeps test output readable. */
export const vmId = (tag = 'vm'): string => `${tag}-${randomUUID()}`;

/** The xenopsd-dialect Vm.t of the worked example (§10). */
export function xenopsdVm(id: string = vmId(), overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    name: 'web01',
    ssidref: 0,
    xsdata: {},
    platformdata: { acpi: '1' },
    bios_strings: {},
    ty: ['HVM', { boot_order: 'cd' }],
    suppress_spurious_page_faults: false,
    memory_static_max: 1073741824,
    memory_dynamic_max: 1073741824,
    memory_dynamic_min: 536870912,
    vcpu_max: 2,
    vcpus: 2,
    scheduler_params: { priority: [256, 0], affinity: [] },
    on_crash: ['Shutdown'],
    on_shutdown: ['Shutdown'],
    on_reboot: ['Start'],
    pci_msitranslate: true,
    pci_power_mgmt: false,
    ...overrides,
  };
}

/** A seed-dialect Vm.t (§4.12): priority as a record, `transient`, PV direct boot. */
export function seedVm(id: string = vmId('seed'), overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    name: 'seed01',
    ssidref: 0,
    xsdata: {},
    platformdata: {},
    bios_strings: {},
    ty: ['PV', { boot: ['Direct', { kernel: '/boot/vmlinuz', cmdline: 'root=/dev/xvda1', ramdisk: [] }], framebuffer: false, vncterm: true }],
    suppress_spurious_page_faults: false,
    machine_address_size: [],
    memory_static_max: 268435456,
    memory_dynamic_max: 268435456,
    memory_dynamic_min: 134217728,
    vcpu_max: 1,
    vcpus: 1,
    scheduler_params: { priority: { weight: 256, cap: 0 }, affinity: [] },
    on_crash: ['Coredump'],
    on_shutdown: ['Shutdown'],
    on_reboot: ['Start'],
    transient: false,
    pci_msitranslate: false,
    pci_power_mgmt: false,
    ...overrides,
  };
}
