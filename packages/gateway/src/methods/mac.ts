import { createHash, randomBytes } from 'node:crypto';
import { Errors } from '@xenops/core';

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
