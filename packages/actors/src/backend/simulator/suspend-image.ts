import { open, readFile, rename } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { Errors, type DomainRecord, type XenopsError } from '@xenops/core';

/** The self-describing file a simulated suspend writes to a `Local` disk (issue 3, item 6). */
export interface SuspendImageFile {
  readonly format: typeof IMAGE_FORMAT;
  readonly version: typeof IMAGE_VERSION;
  readonly vm: string;
  readonly savedAt: string;
  readonly domain: DomainRecord;
}

export const IMAGE_FORMAT = 'xenops-ts-suspend-image';
export const IMAGE_VERSION = 1;

/** Writes the image durably: a temporary file, fsync, then an atomic rename over `path`. */
export async function writeSuspendImage(path: string, vm: string, domain: DomainRecord): Promise<void> {
  const image: SuspendImageFile = { format: IMAGE_FORMAT, version: IMAGE_VERSION, vm, savedAt: new Date().toISOString(), domain };
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(image) + '\n');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    throw Errors.internal(`cannot write the suspend image ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Reads and checks an image; a missing, corrupt or foreign image is a clear Internal_error. */
export async function readSuspendImage(path: string, vm: string): Promise<DomainRecord> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw Errors.internal(code === 'ENOENT' ? `suspend image ${path} does not exist` : `cannot read the suspend image ${path}: ${code ?? (e as Error).message}`);
  }
  let image: Partial<SuspendImageFile>;
  try {
    image = JSON.parse(text) as Partial<SuspendImageFile>;
  } catch {
    throw corrupt(path, 'not JSON');
  }
  if (typeof image !== 'object' || image === null || image.format !== IMAGE_FORMAT) throw corrupt(path, 'not a xenops-ts suspend image');
  if (image.version !== IMAGE_VERSION) throw corrupt(path, `unsupported format version ${String(image.version)}`);
  if (image.vm !== vm) throw Errors.internal(`suspend image ${path} belongs to VM ${String(image.vm)}, not ${vm}`);
  const d = image.domain;
  if (!d || typeof d.vcpus !== 'number' || typeof d.memoryTarget !== 'number' || !Array.isArray(d.xsdata)) throw corrupt(path, 'domain record incomplete');
  return d;
}

function corrupt(path: string, why: string): XenopsError {
  return Errors.internal(`suspend image ${path} is corrupt: ${why}`);
}
