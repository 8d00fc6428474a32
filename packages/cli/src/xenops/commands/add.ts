/**
 * `xenops add CONFIG` and `xenops create CONFIG` (add + start): the VM goes in with VM.add and its
 * devices with VBD.add / VIF.add / PCI.add (API.md §5.2, §7.6, §7.10). If a device cannot be
 * added, a VM that this command created is removed again, so nothing half-made is left.
 */
import { CliError, ExitCode } from '../errors.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { RpcFailure } from '../client/rpc.js';
import { explain } from '../explain.js';
import type { ConfigFormat } from '../config-file.js';
import { listVms, type VmEntry } from '../resolve.js';
import { startVm } from './lifecycle.js';
import { reportVmOperation, str } from './common.js';
import { usageError } from '../errors.js';

type Wire = Record<string, unknown>;

const options = {
  replace: { type: 'boolean', description: 'overwrite the configuration of an existing VM with the same uuid' },
  format: { type: 'string', value: 'FMT', description: 'xl, json or yaml (default: from the file name, else from its content)' },
  'dry-run': { type: 'boolean', short: 'n', description: 'check the file and print what would be sent (as JSON); send nothing' },
} as const;

const DESCRIPTION = `CONFIG is an xl-style config file (as for 'xl create'), or a JSON/YAML document holding a
Vm.t or {vm, vbds, vifs, pcis}; '-' reads standard input. xl keys understood: name, uuid,
type (hvm|pv|pvh) or builder, memory and maxmem (MiB), vcpus, maxvcpus, kernel, ramdisk, cmdline,
extra, root, bootloader, bootloader_args, boot, acpi, hap, vga/stdvga, videoram, serial, keymap,
vnclisten, firmware, on_poweroff, on_reboot, on_crash, on_soft_reset, cpus, cpu_weight, cap,
pci_msitranslate, pci_power_mgmt, and the lists
  disk = [ 'phy:/dev/vg/web01,xvda,w', 'file:/srv/iso/d.iso,hdc:cdrom,r' ]
  vif  = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]
  pci  = [ '0000:00:02.0' ]
A document may leave out the Vm.t keys that have an obvious default (ssidref, xsdata,
platformdata, bios_strings, scheduler_params, on_*, pci_*), and 'id' (a new uuid is made).`;

export interface AddResult {
  vm: VmEntry;
  created: boolean;
  devices: { vbds: string[]; vifs: string[]; pcis: string[] };
}

async function addFromFile(ctx: Context, file: string, values: Record<string, unknown>): Promise<AddResult | undefined> {
  const fmt = str(values.format);
  if (fmt !== undefined && !['xl', 'json', 'yaml'].includes(fmt)) throw usageError(`--format must be xl, json or yaml, not "${fmt}"`);
  // Loaded on demand: the API decoders and the YAML parser take a while to load.
  const { parseConfig, readConfigText } = await import('../config-file.js');
  const text = readConfigText(file);
  const doc = parseConfig(text, file === '-' ? '<stdin>' : file, fmt as ConfigFormat | undefined);
  for (const w of doc.warnings) ctx.warn(w);
  const id = String(doc.vm.id);
  const name = String(doc.vm.name);
  if (values['dry-run']) {
    ctx.printJson({ vm: doc.vm, vbds: doc.vbds, vifs: doc.vifs, pcis: doc.pcis });
    return undefined;
  }
  const rpc = ctx.rpc();
  const existing = await listVms(ctx);
  const same = existing.find((v) => v.id === id);
  if (same && !values.replace) {
    throw new CliError(`a VM with uuid ${id} already exists (${same.name}, ${same.power}); use --replace to overwrite its configuration`, ExitCode.STATE);
  }
  const clash = existing.filter((v) => v.name === name && v.id !== id);
  if (clash.length) ctx.warn(`another VM is also called '${name}' (${clash.map((v) => v.id).join(', ')}); refer to this one by uuid`);
  const errCtx = { op: 'add', vm: name };
  try {
    await rpc.call('VM.add', { vm: doc.vm });
  } catch (e) {
    if (e instanceof RpcFailure) throw explain(e.error, errCtx);
    throw e;
  }
  const added: AddResult['devices'] = { vbds: [], vifs: [], pcis: [] };
  const devices: Array<[string, string, Wire, 'vbds' | 'vifs' | 'pcis', 'disk' | 'nic' | 'pci']> = [
    ...doc.vbds.map((d) => ['VBD.add', 'vbd', d, 'vbds', 'disk'] as const),
    ...doc.vifs.map((d) => ['VIF.add', 'vif', d, 'vifs', 'nic'] as const),
    ...doc.pcis.map((d) => ['PCI.add', 'pci', d, 'pcis', 'pci'] as const),
  ].map((x) => [...x] as [string, string, Wire, 'vbds' | 'vifs' | 'pcis', 'disk' | 'nic' | 'pci']);
  for (const [method, key, dev, bucket, kind] of devices) {
    const devName = (dev.id as string[])[1]!;
    try {
      await rpc.call(method, { [key]: dev });
      added[bucket].push(devName);
    } catch (e) {
      if (!same) await rpc.call('VM.remove', { id }).catch(() => undefined);
      const why = e instanceof RpcFailure ? explain(e.error, { ...errCtx, device: devName, deviceKind: kind }) : (e as Error);
      const code = why instanceof CliError ? why.code : ExitCode.GENERIC;
      throw new CliError(
        `cannot add ${kind} ${devName} of VM ${name}: ${why.message}${same ? '' : '; the VM was not added'}`,
        code,
        why instanceof CliError ? why.errorValue : undefined,
      );
    }
  }
  const vm: VmEntry = { id, name, power: same?.power ?? 'Halted', config: doc.vm, state: {} };
  return { vm, created: !same, devices: added };
}

function summary(r: AddResult): string {
  const parts = [
    r.devices.vbds.length && `${r.devices.vbds.length} disk${r.devices.vbds.length > 1 ? 's' : ''}`,
    r.devices.vifs.length && `${r.devices.vifs.length} nic${r.devices.vifs.length > 1 ? 's' : ''}`,
    r.devices.pcis.length && `${r.devices.pcis.length} PCI device${r.devices.pcis.length > 1 ? 's' : ''}`,
  ].filter(Boolean);
  return parts.length ? ` with ${parts.join(', ')}` : '';
}

export const add: Command = {
  name: 'add',
  aliases: ['define'],
  summary: 'add a VM from an xl config file or a JSON/YAML document (not started)',
  usage: 'add CONFIG [--replace] [--format xl|json|yaml] [--dry-run]',
  description: DESCRIPTION,
  options,
  examples: ['xenops add web01.cfg', 'xenops add web01.yaml --replace', 'xenops add - < vm.json', 'xenops add web01.cfg --dry-run'],
  args: { min: 1, max: 1 },
  complete: ['file'],
  async run(ctx, [file], values) {
    const r = await addFromFile(ctx, file!, values);
    if (!r) return;
    if (ctx.json) ctx.printJson({ id: r.vm.id, name: r.vm.name, replaced: !r.created, ...r.devices });
    else ctx.out(`${r.created ? 'Added' : 'Replaced'} VM ${r.vm.name} (${r.vm.id})${summary(r)}`);
  },
};

export const create: Command = {
  name: 'create',
  summary: 'add a VM from a config file and start it',
  usage: 'create CONFIG [--paused] [--host ID] [--replace] [--format xl|json|yaml] [--no-wait]',
  description: `Like 'xenops add' followed by 'xenops start'.\n\n${DESCRIPTION}`,
  options: {
    ...options,
    paused: { type: 'boolean', description: 'leave the VM Paused after building it' },
    host: { type: 'string', value: 'ID', description: 'the host to start it on (an Up host of xenops hosts)' },
  },
  examples: ['xenops create web01.cfg', 'xenops create web01.cfg --paused', 'xenops create web01.cfg --host h2'],
  args: { min: 1, max: 1 },
  complete: ['file'],
  tasks: true,
  async run(ctx, [file], values) {
    const r = await addFromFile(ctx, file!, values);
    if (!r) return;
    if (!ctx.json) ctx.note(`${r.created ? 'Added' : 'Replaced'} VM ${r.vm.name} (${r.vm.id})${summary(r)}`);
    const host = typeof values.host === 'string' ? values.host : undefined;
    const outcomes = await startVm(ctx, r.vm, values.paused === true, 'create', host);
    if (outcomes) await reportVmOperation(ctx, r.vm, 'Started', outcomes, { replaced: !r.created, ...r.devices });
  },
};
