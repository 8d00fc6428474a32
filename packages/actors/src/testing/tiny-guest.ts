import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_QEMU_BINARY } from '../backends/qemu/qemu-process.js';

/**
 * The tiny guest of `npm run guest-image` for tests that boot real QEMU. Nothing here skips a
 * test: a missing QEMU or image throws, so the suite fails loudly instead of shrinking.
 */

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

export interface GuestImage {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/** Where `npm run guest-image` puts the image (XENOPS_GUEST_IMAGE_DIR overrides, as for the script). */
export const guestImageDir = (): string => process.env.XENOPS_GUEST_IMAGE_DIR || join(repoRoot, '.cache/guest-image');

export function guestImage(): GuestImage {
  const dir = guestImageDir();
  let manifest: { kernel: string; initrd: string; cmdline: string };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new Error(`the tiny guest image is missing in ${dir}: run \`npm run guest-image\` first (${(err as Error).message})`);
  }
  return { kernel: join(dir, manifest.kernel), initrd: join(dir, manifest.initrd), cmdline: manifest.cmdline };
}

/** Throws unless the QEMU binary runs. */
export function requireQemu(binary = DEFAULT_QEMU_BINARY): string {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`${binary} is not available (${r.error?.message ?? r.stderr.trim()}): install qemu-system-x86 (.ci/run does)`);
  }
  return r.stdout.split('\n')[0] ?? '';
}

export const GUEST_MAC = '52:54:00:12:34:56';
/** PCIe root ports rp1..rpN: q35 hot-plugs PCIe devices only into a (free) root port. */
export const ROOT_PORTS = 4;

/**
 * The tiny guest's machine: direct kernel boot, pvpanic, a balloon, one user-mode NIC and free
 * root ports for hot-plug. `extra` is appended (e.g. `-incoming defer`, disks to restore).
 */
export function tinyGuestArgs(image: GuestImage, options: { memoryMiB?: number; extra?: string[] } = {}): string[] {
  const ports = Array.from({ length: ROOT_PORTS }, (_, i) => ['-device', `pcie-root-port,id=rp${i + 1},chassis=${i + 1}`]).flat();
  return [
    '-m', String(options.memoryMiB ?? 128),
    '-kernel', image.kernel,
    '-initrd', image.initrd,
    '-append', image.cmdline,
    '-device', 'pvpanic',
    '-device', 'virtio-balloon-pci,id=balloon0',
    '-netdev', 'user,id=net0',
    '-device', `virtio-net-pci,id=nic0,netdev=net0,mac=${GUEST_MAC}`,
    ...ports,
    ...(options.extra ?? []),
  ];
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
