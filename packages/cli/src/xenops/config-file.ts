/**
 * Reads a VM configuration for `xenops add`/`create`: an xl config file, or a JSON/YAML document
 * holding either a `Vm.t` (API.md §4.2) or a Metadata.t-like `{vm, vbds, vifs, pcis}` (§4.8).
 * Everything is validated with the API's own decoders before anything is sent.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PciT, VbdT, VifT, VmT, XenopsError, wireToJson, type Type } from '@xenops/core';
import { parseDocument } from 'yaml';
import { CliError, ExitCode } from './errors.js';
import { DeviceSpecError, parseDiskSpec, parsePciSpec, parseVifSpec } from './xl-devices.js';
import { XlConfigError, parseXlConfig } from './xl-config.js';
import { xlToDocument, type VmDocument } from './xl-translate.js';

type Wire = Record<string, unknown>;

export type ConfigFormat = 'xl' | 'json' | 'yaml';

const configError = (msg: string) => new CliError(msg, ExitCode.USAGE);

export function readConfigText(path: string, stdin: () => string = () => readFileSync(0, 'utf8')): string {
  if (path === '-') return stdin();
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw configError(`config file ${path} does not exist`);
    if (code === 'EISDIR') throw configError(`${path} is a directory, not a config file`);
    throw configError(`cannot read config file ${path}: ${code ?? (e as Error).message}`);
  }
}

function lineOfPosition(text: string, pos: number): number {
  return text.slice(0, pos).split('\n').length;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    // Node 20 does not always say where; the YAML parser (JSON is YAML) does.
    const line = m ? lineOfPosition(text, Number(m[1])) : (parseDocument(text).errors[0]?.linePos?.[0]?.line ?? 1);
    throw configError(`${file}:${line}: invalid JSON: ${msg.replace(/ in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '')}`);
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const err = doc.errors[0]!;
    const line = err.linePos?.[0]?.line ?? 1;
    throw configError(`${file}:${line}: invalid YAML: ${err.message.split('\n')[0]}`);
  }
  return doc.toJS();
}

export function detectFormat(path: string, text: string): ConfigFormat {
  if (/\.json$/i.test(path)) return 'json';
  if (/\.ya?ml$/i.test(path)) return 'yaml';
  if (/\.(cfg|conf|xl|hvm|pv)$/i.test(path)) return 'xl';
  const first = text.replace(/^(\s|#[^\n]*\n)*/, '')[0];
  if (first === '{' || first === '[') return 'json';
  // `key = value` is xl; `key: value` or `---` is YAML.
  return /^\s*[A-Za-z_][A-Za-z0-9_]*\s*\+?=/m.test(text) && !/^\s*[A-Za-z_][A-Za-z0-9_]*\s*:/m.test(text) ? 'xl' : 'yaml';
}

function lookup(o: Wire, key: string): unknown {
  const k = Object.keys(o).find((x) => x.toLowerCase() === key);
  return k === undefined ? undefined : o[k];
}

/** Keys of `Vm.t` that a hand-written document may leave out, with the value xl would use. */
const VM_DEFAULTS: Wire = {
  ssidref: 0,
  xsdata: {},
  platformdata: {},
  bios_strings: {},
  suppress_spurious_page_faults: false,
  scheduler_params: { affinity: [] },
  on_crash: ['Shutdown'],
  on_shutdown: ['Shutdown'],
  on_reboot: ['Start'],
  pci_msitranslate: true,
  pci_power_mgmt: false,
};

/** Decodes with the API's decoder and re-encodes in the xenopsd wire form (plain JSON). */
function validate<T>(t: Type<T>, w: unknown, path: string, file: string): Wire {
  try {
    const v = t.decode(w, path);
    return JSON.parse(wireToJson(t.encode(v, 'xenopsd'))) as Wire;
  } catch (e) {
    if (e instanceof XenopsError) {
      const v = e.value;
      throw configError(`${file}: invalid ${t.name}: ${Array.isArray(v) && typeof v[1] === 'string' ? v[1] : e.message}`);
    }
    throw e;
  }
}

function documentFromObject(doc: unknown, file: string): VmDocument {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw configError(`${file}: expected an object: a Vm.t, or {"vm": Vm.t, "vbds": [...], "vifs": [...], "pcis": [...]}`);
  }
  const o = doc as Wire;
  const isMetadata = lookup(o, 'vm') !== undefined && typeof lookup(o, 'vm') === 'object';
  const rawVm = { ...((isMetadata ? lookup(o, 'vm') : o) as Wire) };
  const warnings: string[] = [];
  for (const [k, v] of Object.entries(VM_DEFAULTS)) if (lookup(rawVm, k) === undefined) rawVm[k] = v;
  if (lookup(rawVm, 'id') === undefined) rawVm.id = randomUUID();
  const vcpus = lookup(rawVm, 'vcpus');
  if (lookup(rawVm, 'vcpu_max') === undefined && vcpus !== undefined) rawVm.vcpu_max = vcpus;
  const vm = validate(VmT, rawVm, 'vm', file);
  const vmId = vm.id as string;
  const devices = <T>(key: string, t: Type<T>, fromSpec: (s: string, i: number) => Wire): Wire[] => {
    const list = isMetadata ? lookup(o, key) : undefined;
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list)) throw configError(`${file}: '${key}' must be a list`);
    return list.map((item: unknown, i: number) => {
      let w: unknown = item;
      if (typeof item === 'string') {
        try {
          w = fromSpec(item, i);
        } catch (e) {
          if (e instanceof DeviceSpecError) throw configError(`${file}: ${key}[${i}]: ${e.message}`);
          throw e;
        }
      } else if (item && typeof item === 'object' && !Array.isArray(item)) {
        // Device ids are re-keyed to this VM (as VM.import_metadata does); a bare name is accepted.
        const copy = { ...(item as Wire) };
        const idk = Object.keys(copy).find((k) => k.toLowerCase() === 'id');
        const id = idk ? copy[idk] : undefined;
        const dev = Array.isArray(id) ? id[1] : typeof id === 'string' ? id : String(i);
        if (idk) delete copy[idk];
        copy.id = [vmId, dev];
        w = copy;
      }
      return validate(t, w, `${key}.${i}`, file);
    });
  };
  return {
    vm,
    vbds: devices('vbds', VbdT, (s) => parseDiskSpec(s, vmId)),
    vifs: devices('vifs', VifT, (s, i) => parseVifSpec(s, vmId, i, (m) => warnings.push(`${file}: vifs[${i}]: ${m}`))),
    pcis: devices('pcis', PciT, (s, i) => parsePciSpec(s, vmId, i, (m) => warnings.push(`${file}: pcis[${i}]: ${m}`))),
    warnings,
  };
}

/** Parses and validates a configuration file's text. */
export function parseConfig(text: string, file: string, format: ConfigFormat = detectFormat(file, text)): VmDocument & { format: ConfigFormat } {
  if (format === 'json') return { ...documentFromObject(parseJson(text, file), file), format };
  if (format === 'yaml') return { ...documentFromObject(parseYaml(text, file), file), format };
  try {
    const doc = xlToDocument(parseXlConfig(text, file), file);
    // The same validation as documents get: the result must decode as the API's types.
    const vm = validate(VmT, doc.vm, 'vm', file);
    return {
      vm,
      vbds: doc.vbds.map((d, i) => validate(VbdT, d, `disk.${i}`, file)),
      vifs: doc.vifs.map((d, i) => validate(VifT, d, `vif.${i}`, file)),
      pcis: doc.pcis.map((d, i) => validate(PciT, d, `pci.${i}`, file)),
      warnings: doc.warnings,
      format,
    };
  } catch (e) {
    if (e instanceof XlConfigError) throw configError(e.message);
    throw e;
  }
}
