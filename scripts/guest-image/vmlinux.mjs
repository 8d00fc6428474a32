// Turns a compressed x86 kernel (bzImage) into the uncompressed ELF inside it, when that ELF has a
// PVH entry point: QEMU then loads it directly with -kernel and the guest skips decompressing
// itself, which under TCG is the slowest part of a boot (about 4 of 8 s for Debian's xz kernel).
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';

const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const PT_NOTE = 4;

/** The compressed payload of a bzImage (boot protocol 2.08+: payload_offset/payload_length). */
export function bzImagePayload(bz) {
  if (bz.length < 0x250 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error('not a bzImage (no HdrS header)');
  const protocol = bz.readUInt16LE(0x206);
  if (protocol < 0x208) throw new Error(`boot protocol ${protocol.toString(16)} is older than 2.08`);
  const setupSectors = bz[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + bz.readUInt32LE(0x248);
  const end = start + bz.readUInt32LE(0x24c);
  if (end > bz.length) throw new Error('bzImage payload lies outside the file');
  return bz.subarray(start, end);
}

function decompress(payload) {
  if (payload[0] === 0x1f && payload[1] === 0x8b) return gunzipSync(payload);
  if (payload.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    // --single-stream: the kernel build appends the uncompressed size after the xz stream.
    const r = spawnSync('xz', ['-dc', '--single-stream'], { input: payload, maxBuffer: 512 << 20 });
    if (r.error) throw new Error(`xz is not available (${r.error.message}); install xz-utils`);
    if (r.status !== 0) throw new Error(`xz failed: ${r.stderr.toString().trim()}`);
    return r.stdout;
  }
  throw new Error(`unsupported kernel compression (payload starts ${payload.subarray(0, 4).toString('hex')})`);
}

/** Whether an ELF64 little-endian image carries Xen's PVH entry note (what QEMU boots an ELF by). */
export function hasPvhEntry(elf) {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 56 > elf.length || elf.readUInt32LE(at) !== PT_NOTE) continue;
    let p = Number(elf.readBigUInt64LE(at + 8));
    const end = p + Number(elf.readBigUInt64LE(at + 32));
    while (p + 12 <= end && end <= elf.length) {
      const namesz = elf.readUInt32LE(p);
      const descsz = elf.readUInt32LE(p + 4);
      const type = elf.readUInt32LE(p + 8);
      const name = elf.toString('latin1', p + 12, p + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      p += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/** The bootable uncompressed ELF of a bzImage, or the reason there is none. */
export function extractPvhKernel(bz) {
  try {
    const elf = decompress(bzImagePayload(bz));
    if (!hasPvhEntry(elf)) return { reason: 'the kernel has no PVH entry point (CONFIG_PVH)' };
    return { elf };
  } catch (e) {
    return { reason: e instanceof Error ? e.message : String(e) };
  }
}
