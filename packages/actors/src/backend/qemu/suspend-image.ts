import { open } from 'node:fs/promises';
import { Errors, type DomainRecord } from '@xenops/core';
import type { DeviceRecord } from './domain-files.js';

/**
 * A QEMU suspend image (API.md §8.4): a small header, then QEMU's migration stream. The header is
 * MAGIC, a uint32 format version, a uint32 length and that many bytes of JSON (the VM id, the
 * domain record the engine keeps, and the devices the domain had, to create them again before
 * the stream is loaded). QEMU's stream itself starts with "QEVM".
 */
const MAGIC = Buffer.from('XENOPSQS');
export const QEMU_IMAGE_VERSION = 1;
const STREAM_MAGIC = Buffer.from('QEVM');
const FIXED = MAGIC.length + 8;
const MAX_HEADER_JSON = 1 << 20;

export interface ImageHeader {
  readonly vm: string;
  readonly savedAt: string;
  readonly record: DomainRecord;
  readonly devices: readonly DeviceRecord[];
}

export function encodeHeader(h: ImageHeader): Buffer {
  const json = Buffer.from(JSON.stringify(h));
  const fixed = Buffer.alloc(FIXED);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt32BE(QEMU_IMAGE_VERSION, MAGIC.length);
  fixed.writeUInt32BE(json.length, MAGIC.length + 4);
  return Buffer.concat([fixed, json]);
}

/**
 * Reads and checks an image's header; returns it with the offset where QEMU's stream starts. A
 * missing file, a file that is not such an image (foreign), another VM's image, an unknown format
 * version or a stream that does not start as QEMU's are refused with Internal_error.
 */
export async function readImageHeader(path: string, vm: string): Promise<{ header: ImageHeader; streamOffset: number }> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw Errors.internal(code === 'ENOENT' ? `suspend image ${path} does not exist` : `cannot read the suspend image ${path}: ${code ?? (e as Error).message}`);
  }
  try {
    const fixed = Buffer.alloc(FIXED);
    const { bytesRead } = await file.read(fixed, 0, FIXED, 0);
    if (bytesRead < FIXED || !fixed.subarray(0, MAGIC.length).equals(MAGIC)) throw Errors.internal(`suspend image ${path} is not a QEMU suspend image of xenops-ts`);
    const version = fixed.readUInt32BE(MAGIC.length);
    if (version !== QEMU_IMAGE_VERSION) throw Errors.internal(`suspend image ${path} is corrupt: unsupported format version ${version}`);
    const length = fixed.readUInt32BE(MAGIC.length + 4);
    if (length > MAX_HEADER_JSON) throw Errors.internal(`suspend image ${path} is corrupt: header of ${length} bytes`);
    const rest = Buffer.alloc(length + STREAM_MAGIC.length);
    const got = (await file.read(rest, 0, rest.length, FIXED)).bytesRead;
    if (got < rest.length) throw Errors.internal(`suspend image ${path} is corrupt: truncated`);
    let header: ImageHeader;
    try {
      header = JSON.parse(rest.subarray(0, length).toString('utf8')) as ImageHeader;
    } catch {
      throw Errors.internal(`suspend image ${path} is corrupt: header is not JSON`);
    }
    if (typeof header !== 'object' || header === null || !Array.isArray(header.devices) || typeof header.record?.vcpus !== 'number') {
      throw Errors.internal(`suspend image ${path} is corrupt: header incomplete`);
    }
    if (header.vm !== vm) throw Errors.internal(`suspend image ${path} belongs to VM ${String(header.vm)}, not ${vm}`);
    if (!rest.subarray(length).equals(STREAM_MAGIC)) throw Errors.internal(`suspend image ${path} is corrupt: no QEMU migration stream after the header`);
    return { header, streamOffset: FIXED + length };
  } finally {
    await file.close();
  }
}
