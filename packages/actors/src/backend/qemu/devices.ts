import { openSync, readSync, closeSync, existsSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Errors, type Pci, type Vbd, type Vif } from '@xenops/core';
import type { DeviceRecord, QmpCall } from './domain-files.js';
import { qemuId } from './domain-files.js';

export type QemuNetwork = 'user' | 'bridge';

/** Where a disk's file is: `["Local", path]`, or `["VDI", name]`: a file of that name in the SR directory. */
export function diskPath(disk: readonly [string, string], srDir: string | undefined): string {
  const [kind, ref] = disk;
  if (kind === 'Local') return ref;
  if (!srDir) throw Errors.storageBackendError('SR_NOT_CONFIGURED', [ref, 'VDI disks need xenopsd --qemu-sr-dir']);
  if (ref === '' || ref.includes('/') || ref === '.' || ref === '..') throw Errors.storageBackendError('VDI_INVALID', [ref, 'a VDI is a file name in --qemu-sr-dir']);
  return join(srDir, ref);
}

/** The disk's format from its first bytes: qcow2 files start with "QFI\xfb", everything else is raw. */
export function diskFormat(path: string): 'qcow2' | 'raw' {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw Errors.storageBackendError(code, [path, code === 'ENOENT' ? `${path} does not exist` : `cannot open ${path}`]);
  }
  try {
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb])) ? 'qcow2' : 'raw';
  } finally {
    closeSync(fd);
  }
}

/** The virtio-scsi controller CD drives hang on, added with the first CD (so disks-only guests do not probe it). */
export function scsiController(port: string): DeviceRecord {
  return { key: 'scsi0', kind: 'controller', qdevId: 'scsi0', port, calls: [{ command: 'device_add', args: { driver: 'virtio-scsi-pci', id: 'scsi0', bus: port } }] };
}

/** A disk VBD as virtio-blk on its own root port (HVM: bootable in disk-number order). */
export function diskRecord(vbd: Vbd, path: string, diskNumber: number, port: string, bootable: boolean): DeviceRecord {
  const dev = vbd.id[1];
  const node = qemuId('drive', dev);
  const qdevId = qemuId('vbd', dev);
  const readOnly = vbd.mode === 'ReadOnly';
  const calls: QmpCall[] = [
    { command: 'blockdev-add', args: { driver: diskFormat(path), 'node-name': node, 'read-only': readOnly, file: { driver: 'file', filename: path, 'read-only': readOnly } } },
    { command: 'device_add', args: { driver: 'virtio-blk-pci', id: qdevId, drive: node, bus: port, ...(bootable ? { bootindex: diskNumber + 1 } : {}) } },
  ];
  return { key: dev, kind: 'vbd', qdevId, backendId: node, port, calls };
}

/** A CD VBD: a drive with a tray on the SCSI controller, with its medium when it has one. */
export function cdRecord(vbd: Vbd, medium: string | undefined, diskNumber: number, bootable: boolean): DeviceRecord {
  const dev = vbd.id[1];
  const qdevId = qemuId('cd', dev);
  const calls: QmpCall[] = [{ command: 'device_add', args: { driver: 'scsi-cd', id: qdevId, bus: 'scsi0.0', ...(bootable ? { bootindex: diskNumber + 1 } : {}) } }];
  if (medium !== undefined) calls.push(changeMedium(qdevId, medium));
  return { key: dev, kind: 'cd', qdevId, calls };
}

export function changeMedium(qdevId: string, path: string): QmpCall {
  return { command: 'blockdev-change-medium', args: { id: qdevId, filename: path, format: diskFormat(path), 'read-only-mode': 'read-only' } };
}

/** A VIF as virtio-net with its MAC: user-mode networking, or a tap on the VIF's bridge; its carrier by set_link. */
export function vifRecord(vif: Vif, network: QemuNetwork, port: string): DeviceRecord {
  const dev = vif.id[1];
  const netdev = qemuId('net', dev);
  const qdevId = qemuId('vif', dev);
  let netdevArgs: Record<string, unknown>;
  if (network === 'user') netdevArgs = { type: 'user', id: netdev };
  else {
    const [kind, bridge] = vif.backend;
    if (kind !== 'Local') throw Errors.unimplemented(`VIF backend ${kind} on the QEMU backend`);
    netdevArgs = { type: 'bridge', id: netdev, br: bridge };
  }
  const calls: QmpCall[] = [
    { command: 'netdev_add', args: netdevArgs },
    { command: 'device_add', args: { driver: 'virtio-net-pci', id: qdevId, netdev, mac: vif.mac, bus: port } },
  ];
  if (!vif.carrier) calls.push({ command: 'set_link', args: { name: qdevId, up: false } });
  return { key: dev, kind: 'vif', qdevId, backendId: netdev, port, calls };
}

/** The VIF's record with its carrier as now set. */
export function withCarrier(record: DeviceRecord, up: boolean): DeviceRecord {
  const calls = record.calls.filter((c) => c.command !== 'set_link');
  if (!up) calls.push({ command: 'set_link', args: { name: record.qdevId, up: false } });
  return { ...record, calls };
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/**
 * PCI pass-through by VFIO (API.md §8.4): the host device must be bound to vfio-pci; otherwise the
 * host does not allow it and the answer is PCIBack_not_loaded.
 */
export function pciRecord(pci: Pci, port: string): DeviceRecord {
  const a = pci.address;
  const host = `${hex(a.domain, 4)}:${hex(a.bus, 2)}:${hex(a.dev, 2)}.${a.fn}`;
  const driver = `/sys/bus/pci/devices/${host}/driver`;
  let bound = '';
  try {
    bound = existsSync(driver) ? basename(realpathSync(driver)) : '';
  } catch {
    bound = '';
  }
  if (bound !== 'vfio-pci') throw Errors.pcibackNotLoaded();
  const qdevId = qemuId('pci', pci.id[1]);
  return { key: pci.id[1], kind: 'pci', qdevId, port, calls: [{ command: 'device_add', args: { driver: 'vfio-pci', id: qdevId, host, bus: port } }] };
}
