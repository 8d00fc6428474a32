import { readdirSync, readFileSync } from 'node:fs';

/** QEMU's option syntax doubles a comma inside a value (as QemuProcess writes the socket paths). */
const optValue = (s: string) => s.replaceAll(',', ',,');

/**
 * The QEMU processes of this host's backend: every process whose command line serves a QMP socket
 * under `root` (`<data-dir>/qemu`), with the domain directory it names.
 */
export function qemuProcessesUnder(root: string): { pid: number; dir: string }[] {
  const prefix = `path=${optValue(root)}/`;
  const found: { pid: number; dir: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    for (const arg of args) {
      const at = arg.indexOf(prefix);
      if (at < 0 || !arg.includes('/qmp.sock,')) continue;
      const socket = arg.slice(at + 'path='.length, arg.indexOf('/qmp.sock,', at)).replaceAll(',,', ',');
      found.push({ pid: Number(entry), dir: socket });
      break;
    }
  }
  return found;
}
