import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A QMP command as sent, kept so that the same device can be created again (resume, re-attach). */
export interface QmpCall {
  readonly command: string;
  readonly args: Record<string, unknown>;
}

/** A device the backend added to a domain: its QEMU id, the root port it uses, how to create it again. */
export interface DeviceRecord {
  /** The engine's name for it: the VBD's or VIF's device name, `cpu<n>`, `scsi0`. */
  readonly key: string;
  readonly kind: 'vbd' | 'cd' | 'vif' | 'cpu' | 'controller' | 'pci';
  /** QEMU's id of the device (`device_add id`). */
  readonly qdevId: string;
  /** The block node or netdev behind it, if any. */
  readonly backendId?: string;
  /** The PCIe root port it occupies (`rpN`). */
  readonly port?: string;
  readonly calls: readonly QmpCall[];
}

/** What the backend keeps of a domain on disk, to re-attach after an agent restart. */
export interface DomainFile {
  readonly vmId: string;
  readonly domid: number;
  readonly vncPort: number;
  readonly devices: readonly DeviceRecord[];
  /**
   * Where the domain's process and sockets are, when not in this directory: a domain that came
   * by a localhost migration lives beside the one it replaced (API.md §7.8) and keeps its
   * domain.json and serial.log here.
   */
  readonly dir?: string;
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A VM's directory name: the id itself when it is a safe file name, else a hash of it. */
export function vmDirName(vmId: string): string {
  return SAFE.test(vmId) ? vmId : `h-${createHash('sha256').update(vmId).digest('hex').slice(0, 32)}`;
}

/** QEMU ids must start with a letter and hold only letters, digits, `-`, `.`, `_`. */
export function qemuId(prefix: string, name: string): string {
  return /^[A-Za-z0-9._-]{1,32}$/.test(name) ? `${prefix}-${name}` : `${prefix}-h${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

export const qemuRoot = (dataDir: string): string => join(dataDir, 'qemu');
export const domainDir = (dataDir: string, vmId: string): string => join(qemuRoot(dataDir), vmDirName(vmId));
const fileOf = (dir: string) => join(dir, 'domain.json');

export function writeDomainFile(dir: string, d: DomainFile): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${fileOf(dir)}.tmp`;
  writeFileSync(tmp, JSON.stringify(d));
  renameSync(tmp, fileOf(dir));
}

export function readDomainFile(dir: string): DomainFile | undefined {
  try {
    const d = JSON.parse(readFileSync(fileOf(dir), 'utf8')) as DomainFile;
    return typeof d.domid === 'number' && Array.isArray(d.devices) ? d : undefined;
  } catch {
    return undefined;
  }
}

export function removeDomainFile(dir: string): void {
  rmSync(fileOf(dir), { force: true });
}
