import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { Errors, type VmConfig } from '@xenops/core';

/** PCIe root ports rp1..rpN of every domain: q35 hot-plugs a PCIe device only into a free root port. */
export const ROOT_PORTS = 12;
const MIB = 1048576;
/** The tools' QMP socket, beside the serial socket in the domain's directory. */
export const TOOLS_SOCKET = 'qmp-tools.sock';

/** The boot of a VM's domain: a kernel to load directly, or the firmware's search of the disks. */
export type Boot = { readonly kind: 'direct'; readonly kernel: string; readonly cmdline: string; readonly ramdisk?: string } | { readonly kind: 'firmware' };

/**
 * How a VM boots under QEMU (API.md §8.4): PV, PVH and PVinPVH with a `Direct` kernel boot it
 * directly; HVM boots its disks through the firmware; `Indirect` (a bootloader) is not supported;
 * a direct boot without a kernel has nothing to boot; a kernel or ramdisk that cannot be read is
 * the storage's failure.
 */
export function bootOf(config: VmConfig): Boot {
  const [builder, info] = config.ty;
  if (builder === 'HVM') return { kind: 'firmware' };
  const [how, boot] = info.boot;
  if (how === 'Indirect') throw Errors.bootloaderError(boot.bootloader, 'not supported by the QEMU backend');
  if (boot.kernel === '') throw Errors.noBootableDevice();
  for (const file of [boot.kernel, boot.ramdisk].filter((f): f is string => typeof f === 'string' && f !== '')) {
    try {
      accessSync(file, constants.R_OK);
    } catch (e) {
      throw Errors.storageBackendError((e as NodeJS.ErrnoException).code ?? 'EIO', [file, `cannot read ${file}`]);
    }
  }
  return { kind: 'direct', kernel: boot.kernel, cmdline: boot.cmdline, ...(boot.ramdisk ? { ramdisk: boot.ramdisk } : {}) };
}

/**
 * The machine-specific arguments of a domain (QemuProcess adds q35, the accelerator, QMP, the
 * serial console and the pid file): memory up to `memory_static_max` (the balloon sets the
 * target), `vcpus` of `vcpu_max` online, a VNC display on 127.0.0.1 (the first free display from
 * `vncDisplay` on; its port is read back over QMP) on a VGA card, a QMP monitor for tools, pvpanic, a balloon, free root ports for
 * hot-plug, and the boot. A guest's panic pauses it and its reboot ends the process, so that the
 * engine applies `on_crash` and `on_reboot` (§7.5) instead of QEMU deciding.
 */
export function machineArgs(config: VmConfig, boot: Boot, vncDisplay: number, dir: string): string[] {
  const memoryMib = Math.max(16, Math.ceil(config.memory_static_max / MIB));
  const maxCpus = Math.max(1, config.vcpu_max, config.vcpus);
  const ports = Array.from({ length: ROOT_PORTS }, (_, i) => ['-device', `pcie-root-port,id=rp${i + 1},chassis=${i + 1}`]).flat();
  return [
    '-m', `${memoryMib}M`,
    '-smp', `cpus=${Math.max(1, Math.min(config.vcpus, maxCpus))},maxcpus=${maxCpus}`,
    '-vnc', `127.0.0.1:${vncDisplay},to=${vncDisplay + 1000}`,
    '-device', 'VGA,id=video0',
    // A second QMP monitor for tools on this host (`xenops screenshot`): the agent's stays its own.
    '-chardev', `socket,id=qmp-tools,path=${join(dir, TOOLS_SOCKET).replaceAll(',', ',,')},server=on,wait=off`,
    '-mon', 'chardev=qmp-tools,mode=control',
    '-action', 'panic=pause,reboot=shutdown',
    '-device', 'pvpanic',
    '-device', 'virtio-balloon-pci,id=balloon0',
    ...ports,
    ...(boot.kind === 'direct'
      ? ['-kernel', boot.kernel, '-append', boot.cmdline, ...(boot.ramdisk ? ['-initrd', boot.ramdisk] : [])]
      : ['-boot', 'menu=off']),
  ];
}
