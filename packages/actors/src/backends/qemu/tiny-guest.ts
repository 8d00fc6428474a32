import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestImageMissingError } from './errors.js';

/**
 * The tiny guest that `npm run guest-image` builds (scripts/guest-image.mjs), for tests, benches
 * and newcomers: where it is, and a machine to boot it on.
 */

// From src/backends/qemu or dist/backends/qemu of packages/actors up to the repository.
const repoRoot = fileURLToPath(new URL('../../../../../', import.meta.url));

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** The kernel command line the image expects (serial console on ttyS0). */
  cmdline: string;
}

/** Where `npm run guest-image` puts the image: $XENOPS_GUEST_IMAGE_DIR, else .cache/guest-image. */
export const guestImageDir = (): string => process.env.XENOPS_GUEST_IMAGE_DIR || join(repoRoot, '.cache/guest-image');

/** The built image; throws GuestImageMissingError (saying how to build it) when there is none. */
export function guestImage(dir = guestImageDir()): GuestImage {
  let manifest: { kernel?: unknown; initrd?: unknown; cmdline?: unknown };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new GuestImageMissingError(dir, { cause: err });
  }
  if (typeof manifest.kernel !== 'string' || typeof manifest.initrd !== 'string' || typeof manifest.cmdline !== 'string') {
    throw new GuestImageMissingError(dir);
  }
  return { kernel: join(dir, manifest.kernel), initrd: join(dir, manifest.initrd), cmdline: manifest.cmdline };
}

export const GUEST_MAC = '52:54:00:12:34:56';
/** PCIe root ports rp1..rpN: q35 hot-plugs a PCIe device only into a free root port. */
export const ROOT_PORTS = 4;

/**
 * Arguments of the tiny guest's machine (to add to QemuProcess's base arguments): direct kernel
 * boot, pvpanic, a balloon (`balloon0`), one user-mode NIC (`nic0` with GUEST_MAC) and free root
 * ports `rp1`..`rp4`. `extra` is appended (e.g. `-incoming defer`, disks to restore).
 */
export function tinyGuestArgs(image: GuestImage, options: { memoryMiB?: number; extra?: readonly string[] } = {}): string[] {
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
