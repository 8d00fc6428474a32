// Writes a cpio archive in the "newc" format the kernel unpacks as an initramfs (see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst). Entries are written in the order
// given, with fixed owner and mtime, so the same inputs give the same bytes.

const MAGIC = '070701';
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * @typedef {{ type: 'dir', path: string, mode?: number }
 *   | { type: 'file', path: string, data: Buffer, mode?: number }
 *   | { type: 'symlink', path: string, target: string }
 *   | { type: 'char', path: string, major: number, minor: number, mode?: number }} CpioEntry
 */

const hex8 = (n) => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio: field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
};
const pad4 = (n) => (4 - (n % 4)) % 4;

function header({ ino, mode, nlink, size, rdevMajor = 0, rdevMinor = 0, nameSize }) {
  // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  return MAGIC + [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, nameSize, 0].map(hex8).join('');
}

function record(fields, name, data) {
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  const head = Buffer.from(header({ ...fields, nameSize: nameBytes.length, size: data.length }), 'ascii');
  return [head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)), data, Buffer.alloc(pad4(data.length))];
}

/** @param {CpioEntry[]} entries @returns {Buffer} */
export function cpioNewc(entries) {
  const parts = [];
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    if (path === '' || path.split('/').includes('..')) throw new Error(`cpio: bad path ${JSON.stringify(e.path)}`);
    switch (e.type) {
      case 'dir':
        parts.push(...record({ ino: ino++, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2 }, path, Buffer.alloc(0)));
        break;
      case 'file':
        parts.push(...record({ ino: ino++, mode: S_IFREG | (e.mode ?? 0o644), nlink: 1 }, path, e.data));
        break;
      case 'symlink':
        parts.push(...record({ ino: ino++, mode: S_IFLNK | 0o777, nlink: 1 }, path, Buffer.from(e.target, 'utf8')));
        break;
      case 'char':
        parts.push(...record({ ino: ino++, mode: S_IFCHR | (e.mode ?? 0o600), nlink: 1, rdevMajor: e.major, rdevMinor: e.minor }, path, Buffer.alloc(0)));
        break;
      default:
        throw new Error(`cpio: unknown entry type ${JSON.stringify(/** @type {any} */ (e).type)}`);
    }
  }
  parts.push(...record({ ino: 0, mode: 0, nlink: 1 }, 'TRAILER!!!', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
