import { createHash, randomBytes } from 'node:crypto';
import { Errors } from '../errors.js';
import type { DeviceConfig } from './devices.js';

const format = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** A random locally administered unicast MAC (§7.6, `mac: "random"`). */
export function randomMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return format(bytes);
}

/** The MAC derived from the VM id and position (§7.6, `mac: ""`): SHA-256 of `"<vm>/<position>"`. */
export function derivedMac(vmId: string, position: number): string {
  const bytes = createHash('sha256').update(`${vmId}/${position}`).digest().subarray(0, 6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return format(bytes);
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Resolves `"random"` and `""`; any other value must be a colon-separated MAC address. */
export function resolveMac(mac: string, vmId: string, position: number): string {
  if (mac === 'random') return randomMac();
  if (mac === '') return derivedMac(vmId, position);
  if (!MAC.test(mac)) throw Errors.internal(`Type error at vif.mac: expected a MAC address such as fe:ff:ff:ff:ff:ff, "random" or "", got ${JSON.stringify(mac)}`);
  return mac.toLowerCase();
}

const nonNegative = (path: string, n: number) => {
  if (n < 0) throw Errors.internal(`Integer out of range at ${path}: must not be negative, got ${n}`);
};

/**
 * Checks what the IDL's types cannot say about a device record and resolves its MAC (§7.6):
 * positions are not negative, a VIF's MAC is an address, `"random"` or `""`. Used by every path
 * that stores devices (the add calls and metadata import), so none of them stores a bad record.
 */
export function normaliseDevice(device: DeviceConfig, path: string = device.kind): DeviceConfig {
  switch (device.kind) {
    case 'vif': {
      nonNegative(`${path}.position`, device.config.position);
      return { kind: 'vif', config: { ...device.config, mac: resolveMac(device.config.mac, device.config.id[0], device.config.position) } };
    }
    case 'pci':
      nonNegative(`${path}.position`, device.config.position);
      return device;
    case 'vgpu':
      nonNegative(`${path}.position`, device.config.position);
      return device;
    default:
      return device;
  }
}
