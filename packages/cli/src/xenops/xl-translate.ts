/**
 * Maps the settings of an xl config file to a VM document in the API's own shapes: a `Vm.t` plus
 * its `Vbd.t`, `Vif.t` and `Pci.t` records (API.md §4.2, §4.4–§4.6). Memory is in MiB as in xl.
 */
import { randomUUID } from 'node:crypto';
import { DeviceSpecError, parseDiskSpec, parsePciSpec, parseVifSpec, diskOfTarget } from './xl-devices.js';
import { XlConfigError, type XlSetting, type XlValue } from './xl-config.js';

type Wire = Record<string, unknown>;

export interface VmDocument {
  vm: Wire;
  vbds: Wire[];
  vifs: Wire[];
  pcis: Wire[];
  /** Settings that were understood but not used, with their line. */
  warnings: string[];
}

const MiB = 1024 * 1024;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** xl's `on_*` actions as the API's action lists (§4.2). */
const ACTIONS: Record<string, string[]> = {
  destroy: ['Shutdown'],
  restart: ['Start'],
  'rename-restart': ['Start'],
  preserve: ['Pause'],
  'coredump-destroy': ['Coredump', 'Shutdown'],
  'coredump-restart': ['Coredump', 'Start'],
  'soft-reset': ['Softreboot'],
};

/** The xl keys that are read; any other key is reported as ignored. */
export const XL_KEYS = [
  'name', 'uuid', 'type', 'builder', 'memory', 'maxmem', 'vcpus', 'maxvcpus', 'kernel', 'ramdisk', 'cmdline', 'extra',
  'root', 'bootloader', 'bootloader_args', 'boot', 'acpi', 'hap', 'videoram', 'vga', 'stdvga', 'serial', 'keymap',
  'vnc', 'vnclisten', 'firmware', 'bios', 'timeoffset', 'shadow_memory', 'on_poweroff', 'on_reboot', 'on_crash',
  'on_soft_reset', 'cpus', 'cpu_weight', 'cap', 'pci_msitranslate', 'pci_power_mgmt', 'disk', 'vif', 'pci',
  'device_model_stubdomain_override', 'vfb', 'pci_permissive', 'on_watchdog',
] as const;

export function xlToDocument(settings: readonly XlSetting[], file: string): VmDocument {
  const s = new Map<string, XlSetting>();
  for (const x of settings) s.set(x.key, x);
  const warnings: string[] = [];
  const fail = (x: XlSetting | XlValue, msg: string): never => {
    throw new XlConfigError(file, x.line, msg);
  };
  for (const x of settings) {
    if (!(XL_KEYS as readonly string[]).includes(x.key)) warnings.push(`${file}:${x.line}: '${x.key}' is not supported by xenops; ignored`);
  }

  const str = (key: string): string | undefined => {
    const x = s.get(key);
    if (!x) return undefined;
    if (x.value.kind !== 'string') fail(x, `'${key}' must be a "quoted string"`);
    return (x.value as { value: string }).value;
  };
  const num = (key: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined => {
    const x = s.get(key);
    if (!x) return undefined;
    let n: number;
    if (x.value.kind === 'number') n = x.value.value;
    else if (x.value.kind === 'string' && /^-?\d+(\.\d+)?$/.test(x.value.value.trim())) n = Number(x.value.value);
    else return fail(x, `'${key}' must be a number`);
    if ((opts.integer ?? true) && !Number.isInteger(n)) fail(x, `'${key}' must be a whole number, not ${n}`);
    if (opts.min !== undefined && n < opts.min) fail(x, `'${key}' must be at least ${opts.min}, not ${n}`);
    if (opts.max !== undefined && n > opts.max) fail(x, `'${key}' must be at most ${opts.max}, not ${n}`);
    return n;
  };
  const bool = (key: string): boolean | undefined => {
    const x = s.get(key);
    if (!x) return undefined;
    const v = x.value.kind === 'list' ? undefined : String(x.value.value).toLowerCase();
    if (v === '1' || v === 'true' || v === 'yes') return true;
    if (v === '0' || v === 'false' || v === 'no') return false;
    return fail(x, `'${key}' must be 0 or 1`);
  };
  const strList = (key: string): Array<{ value: string; line: number }> => {
    const x = s.get(key);
    if (!x) return [];
    const items = x.value.kind === 'list' ? x.value.items : [x.value];
    return items.map((it) => {
      if (it.kind !== 'string') fail(it, `the items of '${key}' must be "quoted strings"`);
      return { value: (it as { value: string }).value, line: it.line };
    });
  };

  const nameSetting = s.get('name');
  if (!nameSetting) throw new XlConfigError(file, 1, "missing 'name': every VM needs one, e.g. name = \"web01\"");
  const name = str('name')!;
  if (!name.trim()) fail(nameSetting, "'name' must not be empty");
  const uuid = str('uuid');
  if (uuid !== undefined && !UUID.test(uuid)) fail(s.get('uuid')!, `'uuid' must be a UUID like 5f0c7a3e-2b1d-4c55-9a10-0123456789ab, not "${uuid}"`);
  const id = (uuid ?? randomUUID()).toLowerCase();

  // Builder: `type` (xl ≥ 4.10) or the older `builder`; without either, PV if a kernel or
  // bootloader is given, else HVM.
  let kind: 'HVM' | 'PV' | 'PVH';
  const type = str('type');
  const builder = str('builder');
  if (type !== undefined) {
    const t = type.toLowerCase();
    if (t === 'hvm') kind = 'HVM';
    else if (t === 'pv') kind = 'PV';
    else if (t === 'pvh') kind = 'PVH';
    else return fail(s.get('type')!, `'type' must be "hvm", "pv" or "pvh", not "${type}"`);
  } else if (builder !== undefined) {
    const b = builder.toLowerCase();
    if (b === 'hvm') kind = 'HVM';
    else if (b === 'generic' || b === 'linux') kind = 'PV';
    else return fail(s.get('builder')!, `'builder' must be "hvm" or "generic", not "${builder}"`);
  } else kind = s.has('kernel') || s.has('bootloader') ? 'PV' : 'HVM';

  const memory = num('memory', { min: 1 }) ?? 128;
  const maxmem = num('maxmem', { min: 1 }) ?? memory;
  if (maxmem < memory) fail(s.get('maxmem')!, `'maxmem' (${maxmem} MiB) must not be below 'memory' (${memory} MiB)`);
  const vcpus = num('vcpus', { min: 1 }) ?? 1;
  const maxvcpus = num('maxvcpus', { min: 1 }) ?? vcpus;
  if (maxvcpus < vcpus) fail(s.get('maxvcpus')!, `'maxvcpus' (${maxvcpus}) must not be below 'vcpus' (${vcpus})`);

  let ty: unknown;
  if (kind === 'HVM') {
    for (const k of ['kernel', 'ramdisk', 'bootloader']) {
      if (s.has(k)) warnings.push(`${file}:${s.get(k)!.line}: '${k}' is ignored for an HVM guest`);
    }
    const hvm: Wire = {};
    const boot = str('boot');
    if (boot !== undefined) hvm.boot_order = boot;
    const acpi = bool('acpi');
    if (acpi !== undefined) hvm.acpi = acpi;
    const hap = bool('hap');
    if (hap !== undefined) hvm.hap = hap;
    const videoram = num('videoram', { min: 1 });
    if (videoram !== undefined) hvm.video_mib = videoram;
    const vga = str('vga');
    if (vga !== undefined) {
      const v = vga.toLowerCase();
      if (v === 'stdvga') hvm.video = 'Standard_VGA';
      else if (v === 'cirrus') hvm.video = 'Cirrus';
      else if (v === 'none') hvm.video = 'Cirrus';
      else fail(s.get('vga')!, `'vga' must be "stdvga", "cirrus" or "none", not "${vga}"`);
    }
    if (bool('stdvga')) hvm.video = 'Standard_VGA';
    const serial = strList('serial')[0];
    if (serial) hvm.serial = serial.value;
    const keymap = str('keymap');
    if (keymap !== undefined) hvm.keymap = keymap;
    if (bool('vnc') !== false) {
      const vnclisten = str('vnclisten');
      if (vnclisten !== undefined) hvm.vnc_ip = vnclisten;
    }
    const timeoffset = s.get('timeoffset');
    if (timeoffset) hvm.timeoffset = String((timeoffset.value as { value: unknown }).value);
    const shadow = num('shadow_memory', { min: 0 });
    if (shadow !== undefined && shadow > 0) hvm.shadow_multiplier = Math.max(1, shadow / Math.max(1, maxmem / 256));
    const firmware = (str('firmware') ?? str('bios'))?.toLowerCase();
    if (firmware === 'uefi' || firmware === 'ovmf') hvm.firmware = ['Uefi', {}];
    else if (firmware !== undefined && !['bios', 'seabios', 'rombios'].includes(firmware)) {
      fail(s.get('firmware') ?? s.get('bios')!, `'firmware' must be "bios" or "uefi", not "${firmware}"`);
    }
    if (s.get('device_model_stubdomain_override')) hvm.qemu_stubdom = bool('device_model_stubdomain_override');
    if (s.has('pci')) hvm.pci_passthrough = strList('pci').length > 0;
    ty = ['HVM', hvm];
  } else {
    const bootloader = str('bootloader');
    let boot: unknown;
    if (bootloader !== undefined) {
      const args = strList('bootloader_args').map((x) => x.value).join(' ');
      boot = ['Indirect', { bootloader, extra_args: str('extra') ?? '', legacy_args: '', bootloader_args: args, devices: [] }];
    } else {
      const kernel = str('kernel');
      if (kernel === undefined) {
        throw new XlConfigError(file, (s.get('type') ?? s.get('builder') ?? nameSetting).line, `a ${kind} guest needs 'kernel' (direct boot) or 'bootloader' (e.g. bootloader = "pygrub")`);
      }
      const root = str('root');
      const cmdline = [root !== undefined ? `root=${root}` : undefined, str('cmdline') ?? str('extra')].filter((x) => x !== undefined && x !== '').join(' ');
      const direct: Wire = { kernel, cmdline };
      const ramdisk = str('ramdisk');
      if (ramdisk !== undefined) direct.ramdisk = ramdisk;
      boot = ['Direct', direct];
    }
    const pv: Wire = { boot, framebuffer: s.has('vfb'), vncterm: true };
    if (s.has('pci')) pv.pci_passthrough = strList('pci').length > 0;
    ty = [kind === 'PVH' ? 'PVH' : 'PV', pv];
  }

  const action = (key: string, dflt: string): string[] => {
    const v = str(key) ?? dflt;
    const a = ACTIONS[v.toLowerCase()];
    if (!a) return fail(s.get(key)!, `'${key}' must be one of ${Object.keys(ACTIONS).join(', ')}; not "${v}"`);
    return a;
  };

  // cpus = "0-3,6" (all vCPUs) or ["0-1", "2"] (per vCPU).
  const parseCpuSet = (text: string, line: number): number[] => {
    const out: number[] = [];
    for (const part of text.split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) throw new XlConfigError(file, line, `invalid CPU list "${text}"; write e.g. "0-3,6"`);
      const lo = Number(m[1]);
      const hi = Number(m[2] ?? m[1]);
      if (hi < lo) throw new XlConfigError(file, line, `invalid CPU range "${part}"`);
      for (let c = lo; c <= hi; c++) out.push(c);
    }
    return out;
  };
  let affinity: number[][] = [];
  const cpus = s.get('cpus');
  if (cpus) {
    if (cpus.value.kind === 'list') affinity = strList('cpus').map((x) => parseCpuSet(x.value, x.line));
    else if (cpus.value.kind === 'string') {
      const set = parseCpuSet(cpus.value.value, cpus.line);
      affinity = Array.from({ length: maxvcpus }, () => set);
    } else affinity = Array.from({ length: maxvcpus }, () => [cpus.value.kind === 'number' ? cpus.value.value : 0]);
  }
  const weight = num('cpu_weight', { min: 1, max: 65535 });
  const cap = num('cap', { min: 0 });
  const scheduler_params: Wire = { affinity };
  if (weight !== undefined || cap !== undefined) scheduler_params.priority = [weight ?? 256, cap ?? 0];

  const vm: Wire = {
    id,
    name,
    ssidref: 0,
    xsdata: {},
    platformdata: kind === 'HVM' ? { acpi: bool('acpi') === false ? '0' : '1' } : {},
    bios_strings: {},
    ty,
    suppress_spurious_page_faults: false,
    memory_static_max: maxmem * MiB,
    memory_dynamic_max: memory * MiB,
    memory_dynamic_min: memory * MiB,
    vcpu_max: maxvcpus,
    vcpus,
    scheduler_params,
    on_crash: action('on_crash', 'destroy'),
    on_shutdown: action('on_poweroff', 'destroy'),
    on_reboot: action('on_reboot', 'restart'),
    on_softreboot: action('on_soft_reset', 'soft-reset'),
    pci_msitranslate: bool('pci_msitranslate') ?? true,
    pci_power_mgmt: bool('pci_power_mgmt') ?? false,
  };

  const devErr = (line: number, e: unknown): never => {
    if (e instanceof DeviceSpecError) throw new XlConfigError(file, line, e.message);
    throw e;
  };
  const vbds: Wire[] = [];
  const seen = new Map<string, number>();
  for (const d of strList('disk')) {
    let vbd: Wire;
    try {
      vbd = parseDiskSpec(d.value, id);
    } catch (e) {
      return devErr(d.line, e);
    }
    const dev = (vbd.id as string[])[1]!;
    if (seen.has(dev)) throw new XlConfigError(file, d.line, `disk ${dev} is listed twice (also on line ${seen.get(dev)})`);
    seen.set(dev, d.line);
    vbds.push(vbd);
  }
  const vifs = strList('vif').map((v, i) => {
    try {
      return parseVifSpec(v.value, id, i, (m) => warnings.push(`${file}:${v.line}: ${m}`));
    } catch (e) {
      return devErr(v.line, e);
    }
  });
  const pcis = strList('pci').map((p, i) => {
    try {
      return parsePciSpec(p.value, id, i, (m) => warnings.push(`${file}:${p.line}: ${m}`));
    } catch (e) {
      return devErr(p.line, e);
    }
  });
  return { vm, vbds, vifs, pcis, warnings };
}

export { diskOfTarget };
