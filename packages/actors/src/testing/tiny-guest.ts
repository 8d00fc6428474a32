import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { DEFAULT_QEMU_BINARY } from '../backends/qemu/qemu-process.js';
import { guestImage } from '../backends/qemu/tiny-guest.js';

export { GUEST_MAC, guestImage, guestImageDir, tinyGuestArgs, type GuestImage } from '../backends/qemu/tiny-guest.js';

/** Throws unless the QEMU binary runs (tests then fail with this reason; none is skipped). */
export function requireQemu(binary = DEFAULT_QEMU_BINARY): string {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`${binary} is not available (${r.error?.message ?? r.stderr.trim()}): install qemu-system-x86 (.ci/run does)`);
  }
  return r.stdout.split('\n')[0] ?? '';
}

/** Pids of live processes whose command line mentions `fragment` (to prove none is left behind). */
export function processesMentioning(fragment: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (cmdline.includes(fragment) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

const MIB = 1048576;

/** A xenopsd-dialect `Vm.t` (wire form) that boots the tiny guest directly (PVH), small enough for CI. */
export function tinyGuestVm(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const img = guestImage();
  return {
    id,
    name: id,
    ssidref: 0,
    xsdata: {},
    platformdata: {},
    bios_strings: {},
    ty: ['PVH', { boot: ['Direct', { kernel: img.kernel, cmdline: img.cmdline, ramdisk: img.initrd }] }],
    suppress_spurious_page_faults: false,
    memory_static_max: 160 * MIB,
    memory_dynamic_max: 160 * MIB,
    memory_dynamic_min: 128 * MIB,
    vcpu_max: 2,
    vcpus: 1,
    scheduler_params: { affinity: [] },
    on_crash: ['Shutdown'],
    on_shutdown: ['Shutdown'],
    on_reboot: ['Start'],
    pci_msitranslate: true,
    pci_power_mgmt: false,
    ...overrides,
  };
}
