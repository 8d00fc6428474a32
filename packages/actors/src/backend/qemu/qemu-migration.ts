/**
 * Live migration between two hosts' QEMU processes (API.md §7.8, §8.4): what the source sends the
 * destination to get ready (the configuration, the devices as QMP calls, the domain's record),
 * and QEMU's own migration status read as progress.
 */
import { Errors, parseJsonWire, VmT, wireToJson, type DomainRecord, type VmConfig } from '@xenops/core';
import type { DeviceRecord } from './domain-files.js';
import type { QemuDomain } from './qemu-domain.js';

/** What the destination's backend needs to start a process identical to the source's. */
export interface MigrationPayload {
  readonly config: VmConfig;
  readonly devices: readonly DeviceRecord[];
  readonly record: DomainRecord;
}

export function encodeMigrationPayload(p: MigrationPayload): unknown {
  return { config: JSON.parse(wireToJson(VmT.encode(p.config, 'internal'))) as unknown, devices: p.devices, record: p.record };
}

/** Checks what came over the bus: the source is another agent, but a message is a boundary. */
export function decodeMigrationPayload(v: unknown, vmId: string): MigrationPayload {
  const bad = (why: string) => Errors.internal(`VM ${vmId}: migration payload: ${why}`);
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  const o = v as Record<string, unknown>;
  let config: VmConfig;
  try {
    config = VmT.decode(parseJsonWire(JSON.stringify(o.config)), 'config');
  } catch (e) {
    throw bad(`config: ${(e as Error).message}`);
  }
  if (config.id !== vmId) throw bad(`config of VM ${config.id}`);
  const devices = o.devices;
  if (!Array.isArray(devices) || !devices.every((d) => typeof d === 'object' && d !== null && typeof d.key === 'string' && typeof d.kind === 'string' && Array.isArray(d.calls))) {
    throw bad('devices');
  }
  if (typeof o.record !== 'object' || o.record === null) throw bad('record');
  return { config, devices: devices as DeviceRecord[], record: o.record as DomainRecord };
}

/** QEMU's `query-migrate`, the fields read here. */
export interface MigrateInfo {
  readonly status?: string;
  readonly ram?: { readonly transferred?: number; readonly total?: number; readonly remaining?: number };
  readonly 'total-time'?: number;
  readonly downtime?: number;
  readonly 'error-desc'?: string;
  readonly 'socket-address'?: ReadonlyArray<{ readonly type?: string; readonly host?: string; readonly port?: string }>;
}

export async function queryMigrate(d: QemuDomain): Promise<MigrateInfo> {
  return (await d.execute('query-migrate')) as MigrateInfo;
}

/** How far the RAM copy is (0..1): transferred of transferred plus remaining (pages dirtied again count again). */
export function ramFraction(info: MigrateInfo): number | undefined {
  const t = info.ram?.transferred;
  const r = info.ram?.remaining;
  if (typeof t !== 'number' || typeof r !== 'number' || t + r === 0) return undefined;
  return t / (t + r);
}

/** Where a destination waiting with `migrate-incoming tcp:<host>:0` listens. */
export function listeningUri(info: MigrateInfo, vmId: string): string {
  const inet = info['socket-address']?.find((a) => a.type === 'inet' && a.port !== undefined);
  if (!inet) throw Errors.internal(`VM ${vmId}: the migration's destination QEMU reports no listening address`);
  return `tcp:${inet.host}:${inet.port}`;
}
