import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { promisify } from 'node:util';
import type { HostFacts } from '@xenops/core';

const run = promisify(execFile);

/** The fields of the first processor block of /proc/cpuinfo, and how many distinct sockets it names. */
function cpuinfo(): { fields: Map<string, string>; sockets: number } {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux: the fields stay "unknown" */
  }
  const fields = new Map<string, string>();
  const sockets = new Set<string>();
  for (const block of text.split(/\n\n/)) {
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const key = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (key === 'physical id') sockets.add(value);
      if (!fields.has(key)) fields.set(key, value);
    }
  }
  return { fields, sockets: sockets.size };
}

/** The QEMU binary's own version line ("QEMU emulator version 7.2.22 ..."), or "unknown". */
export async function qemuVersion(binary: string): Promise<string> {
  try {
    const { stdout } = await run(binary, ['-version'], { timeout: 10_000 });
    return /version (\S+)/.exec(stdout)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** HOST.stat of the QEMU backend (API.md §8.4): the real CPUs, memory and IOMMU of this machine. */
export function readHostFacts(version: string, accel: string): HostFacts {
  const { fields, sockets } = cpuinfo();
  const f = (k: string) => fields.get(k) ?? 'unknown';
  const count = cpus().length;
  const siblings = Number(fields.get('siblings'));
  const cores = Number(fields.get('cpu cores'));
  let iommu = false;
  try {
    iommu = readdirSync('/sys/class/iommu').length > 0;
  } catch {
    /* no IOMMU class: none */
  }
  return {
    host: {
      cpu_info: {
        cpu_count: count,
        socket_count: Math.max(1, sockets),
        threads_per_core: siblings > 0 && cores > 0 ? Math.max(1, Math.round(siblings / cores)) : 1,
        vendor: f('vendor_id'),
        speed: f('cpu MHz'),
        modelname: f('model name'),
        family: f('cpu family'),
        model: f('model'),
        stepping: f('stepping'),
        flags: f('flags'),
        features: '',
        features_pv: '',
        features_hvm: '',
        features_pv_host: '',
        features_hvm_host: '',
      },
      hypervisor: { version: `qemu ${version}`, capabilities: accel },
      chipset_info: { iommu, hvm: true },
    },
    totalMemoryMib: Math.floor(totalmem() / 1048576),
    consoleData: `xenops-ts qemu ${version} (${accel})`,
  };
}

/** Bytes the kernel says could be given to a new process now (MemAvailable), or undefined. */
export function availableMemoryBytes(): number | undefined {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
