/**
 * xl device specifications (xl-disk-configuration(5), xl-network-configuration(5), xl.cfg(5)
 * `pci`), turned into the API's `Vbd.t`, `Vif.t` and `Pci.t` wire records (API.md §4.4–§4.6).
 * Used by `xl-translate.ts` for config files and by `xenops disk add` / `xenops nic add`.
 */

export class DeviceSpecError extends Error {
  override readonly name = 'DeviceSpecError';
}

type Wire = Record<string, unknown>;

const DISK_FORMATS = new Set(['raw', 'qcow', 'qcow2', 'vhd', 'qed', 'empty']);
const TARGET_PREFIXES = /^(?:phy|file|tap2?|aio|raw|qcow2?|vhd|qed)(?::(?:aio|qcow2?|vhd|raw))?:/;

/** Device name → Device_number (§4.1): xvda → Xen 0, xvdb2 → Xen 1 part 2, hdc → Ide 2, sda → Scsi 0. */
export function positionOfVdev(vdev: string): [string, number, number] | undefined {
  const letters = (s: string) => [...s].reduce((n, ch) => n * 26 + (ch.charCodeAt(0) - 96), 0) - 1;
  let m = /^xvd([a-z]+)(\d+)?$/.exec(vdev);
  if (m) {
    const disk = letters(m[1]!);
    const part = Number(m[2] ?? 0);
    return disk <= 1048575 && part <= 15 ? ['Xen', disk, part] : undefined;
  }
  m = /^hd([a-t])(\d+)?$/.exec(vdev);
  if (m) {
    const part = Number(m[2] ?? 0);
    return part <= 63 ? ['Ide', letters(m[1]!), part] : undefined;
  }
  m = /^sd([a-p])(\d+)?$/.exec(vdev);
  if (m) {
    const part = Number(m[2] ?? 0);
    return part <= 15 ? ['Scsi', letters(m[1]!), part] : undefined;
  }
  m = /^d(\d+)(?:p(\d+))?$/.exec(vdev);
  if (m) {
    const disk = Number(m[1]);
    const part = Number(m[2] ?? 0);
    return disk <= 1048575 && part <= 15 ? ['Xen', disk, part] : undefined;
  }
  return undefined;
}

/** A backend path as an API `disk`: `vdi:SR/VDI` → `["VDI", "SR/VDI"]`, anything else `["Local", path]`. */
export function diskOfTarget(target: string): ['Local' | 'VDI', string] {
  if (target.startsWith('vdi:')) {
    const v = target.slice(4);
    if (!v.includes('/')) throw new DeviceSpecError(`VDI target "${target}" must be vdi:SR/VDI`);
    return ['VDI', v];
  }
  return ['Local', target.replace(TARGET_PREFIXES, '')];
}

/**
 * One xl disk spec, e.g. `phy:/dev/vg/disk1,xvda,w`, `file:/x.iso,hdc:cdrom,r`,
 * `format=raw, vdev=xvdb, access=rw, target=/dev/vg/d2`, `,hdc:cdrom,r` (empty drive).
 */
export function parseDiskSpec(spec: string, vmId: string): Wire {
  let rest = spec.trim();
  let target: string | undefined;
  const t = /(?:^|,)\s*target=(.*)$/.exec(rest);
  if (t) {
    target = t[1]!.trim();
    rest = rest.slice(0, t.index);
  }
  let format: string | undefined;
  let vdev: string | undefined;
  let access: string | undefined;
  let devtype: string | undefined;
  const positionals: string[] = [];
  for (const raw of rest.split(',')) {
    const part = raw.trim();
    const kv = /^([a-z-_]+)=(.*)$/.exec(part);
    if (kv) {
      const [, k, v] = kv as unknown as [string, string, string];
      if (k === 'vdev') vdev = v;
      else if (k === 'access') access = v;
      else if (k === 'devtype') devtype = v;
      else if (k === 'format') format = v;
      else if (['backendtype', 'backend', 'script', 'colo-host', 'colo-port', 'specification', 'trusted', 'discard'].includes(k)) continue;
      else throw new DeviceSpecError(`unknown disk parameter "${k}" in "${spec}"`);
    } else if (part === 'cdrom') devtype = 'cdrom';
    else if (['discard', 'no-discard', 'direct-io-safe', 'trusted', 'untrusted'].includes(part)) continue;
    else positionals.push(part);
  }
  // Positional order: target, [format], vdev, access.
  const pos = [...positionals];
  if (target === undefined && pos.length) target = pos.shift();
  if (pos.length && DISK_FORMATS.has(pos[0]!) && format === undefined) format = pos.shift();
  if (pos.length && vdev === undefined) vdev = pos.shift();
  if (pos.length && access === undefined) access = pos.shift();
  if (pos.length) throw new DeviceSpecError(`too many fields in disk spec "${spec}" (expected target,vdev,access)`);
  if (!vdev) throw new DeviceSpecError(`disk spec "${spec}" names no virtual device (e.g. xvda)`);
  const cd = /^(.*):cdrom$/.exec(vdev);
  if (cd) {
    vdev = cd[1]!;
    devtype = 'cdrom';
  }
  if (devtype !== undefined && devtype !== 'cdrom' && devtype !== 'disk') throw new DeviceSpecError(`devtype must be cdrom or disk, not "${devtype}"`);
  if (!/^[A-Za-z0-9_.:-]+$/.test(vdev)) throw new DeviceSpecError(`invalid virtual device name "${vdev}"`);
  const isCdrom = devtype === 'cdrom';
  let mode: 'ReadOnly' | 'ReadWrite';
  const a = (access ?? (isCdrom ? 'r' : 'w')).toLowerCase();
  if (a === 'r' || a === 'ro') mode = 'ReadOnly';
  else if (a === 'w' || a === 'rw') mode = 'ReadWrite';
  else throw new DeviceSpecError(`access must be r, ro, w or rw, not "${access}" in "${spec}"`);
  const empty = target === undefined || target === '' || format === 'empty';
  if (empty && !isCdrom) throw new DeviceSpecError(`disk spec "${spec}" has no target; only a cdrom drive may be empty`);
  const vbd: Wire = { id: [vmId, vdev], mode, ty: isCdrom ? 'CDROM' : 'Disk' };
  const position = positionOfVdev(vdev);
  if (position) vbd.position = position;
  if (!empty) vbd.backend = diskOfTarget(target!);
  return vbd;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** `10Mb/s@20ms` → `[kbytes_per_sec, timeslice_us]`. */
function parseRate(text: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)([Bb])\/s(?:@(\d+)(us|ms|s))?$/.exec(text.trim());
  if (!m) throw new DeviceSpecError(`invalid rate "${text}"; write e.g. 10Mb/s or 100MB/s@20ms`);
  const mult = { '': 1, K: 1e3, M: 1e6, G: 1e9 }[m[2] as ''];
  const bytes = (Number(m[1]) * mult) / (m[3] === 'b' ? 8 : 1);
  const slice = m[4] ? Number(m[4]) * { us: 1, ms: 1000, s: 1_000_000 }[m[5] as 'us'] : 50_000;
  return [Math.max(1, Math.round(bytes / 1000)), slice];
}

/** One xl vif spec, e.g. `mac=00:16:3e:00:00:01,bridge=xenbr0`. `index` is its place in the list. */
export function parseVifSpec(spec: string, vmId: string, index: number, warn: (m: string) => void = () => undefined): Wire {
  const vif: Wire = { mac: '', backend: ['Local', 'xenbr0'] };
  let position = index;
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (!part) continue;
    const kv = /^([a-z_]+)=(.*)$/.exec(part);
    if (!kv) throw new DeviceSpecError(`"${part}" in vif spec "${spec}" is not key=value`);
    const [, k, v] = kv as unknown as [string, string, string];
    switch (k) {
      case 'mac':
        if (!MAC.test(v) && v !== 'random') throw new DeviceSpecError(`invalid MAC address "${v}"; write six hex pairs like 00:16:3e:12:34:56`);
        vif.mac = v.toLowerCase();
        break;
      case 'bridge':
        if (!v) throw new DeviceSpecError('bridge must not be empty');
        vif.backend = ['Local', v];
        break;
      case 'mtu': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 68 || n > 65535) throw new DeviceSpecError(`invalid mtu "${v}"`);
        vif.mtu = n;
        break;
      }
      case 'rate':
        vif.rate = parseRate(v);
        break;
      case 'ip': {
        const ips = v.split(/\s+/).filter(Boolean);
        vif.locking_mode = ['Locked', { ipv4: ips.filter((x) => !x.includes(':')), ipv6: ips.filter((x) => x.includes(':')) }];
        break;
      }
      case 'devid': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new DeviceSpecError(`invalid devid "${v}"`);
        position = n;
        break;
      }
      case 'vlan': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 4094) throw new DeviceSpecError(`invalid vlan "${v}"`);
        vif.vlan = n;
        break;
      }
      case 'model':
      case 'vifname':
      case 'type':
      case 'script':
      case 'backend':
      case 'gatewaydev':
      case 'accel':
        (vif.other_config ??= {} as Record<string, string>);
        (vif.other_config as Record<string, string>)[k] = v;
        break;
      default:
        warn(`unknown vif parameter "${k}" ignored`);
    }
  }
  vif.id = [vmId, String(position)];
  vif.position = position;
  return vif;
}

/** One xl pci spec, e.g. `0000:00:02.0` or `00:02.0,msitranslate=1`. */
export function parsePciSpec(spec: string, vmId: string, index: number, warn: (m: string) => void = () => undefined): Wire {
  const [bdf, ...opts] = spec.split(',').map((s) => s.trim());
  const m = /^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])(?:@[0-9a-fA-F]+)?$/.exec(bdf ?? '');
  if (!m) throw new DeviceSpecError(`invalid PCI address "${bdf}"; write DDDD:BB:DD.F, e.g. 0000:00:02.0`);
  const pci: Wire = {
    id: [vmId, String(index)],
    position: index,
    address: { domain: parseInt(m[1] ?? '0', 16), bus: parseInt(m[2]!, 16), dev: parseInt(m[3]!, 16), fn: Number(m[4]) },
  };
  for (const o of opts) {
    const kv = /^([a-z_]+)=(.*)$/.exec(o);
    if (!kv) throw new DeviceSpecError(`"${o}" in pci spec "${spec}" is not key=value`);
    if (kv[1] === 'msitranslate' || kv[1] === 'power_mgmt') {
      if (kv[2] !== '0' && kv[2] !== '1') throw new DeviceSpecError(`${kv[1]} must be 0 or 1`);
      pci[kv[1]] = kv[2] === '1';
    } else warn(`pci parameter "${kv[1]}" ignored`);
  }
  return pci;
}
