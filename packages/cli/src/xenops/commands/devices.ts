/**
 * `xenops disk …` and `xenops nic …`: VBDs and VIFs of a VM (API.md §4.4, §4.5, §5.2, §7.6).
 * Specs are xl's: `phy:/dev/vg/d,xvdb,w`, `file:/x.iso,hdc:cdrom,r`; `mac=…,bridge=xenbr0`.
 */
import { usageError } from '../errors.js';
import type { Command, Values } from '../command.js';
import type { Context } from '../context.js';
import { RpcFailure } from '../client/rpc.js';
import { explain, type ErrorContext } from '../explain.js';
import { renderTable } from '../format/table.js';
import { resolveVm, label, type VmEntry } from '../resolve.js';
import { call, runOperation } from '../wait.js';
import { DeviceSpecError, diskOfTarget, parseDiskSpec, parseVifSpec } from '../xl-devices.js';
import { showDisk } from './common.js';

type Wire = Record<string, unknown>;

interface Kind {
  word: 'disk' | 'nic';
  module: 'VBD' | 'VIF';
  key: 'vbd' | 'vif';
}
const DISK: Kind = { word: 'disk', module: 'VBD', key: 'vbd' };
const NIC: Kind = { word: 'nic', module: 'VIF', key: 'vif' };

async function listDevices(ctx: Context, k: Kind, vm: VmEntry): Promise<Array<[Wire, Wire]>> {
  return call<Array<[Wire, Wire]>>(ctx, `${k.module}.list`, { id: vm.id }, { op: `${k.word} list`, vm: label(vm), deviceKind: k.word });
}

function need(args: string[], n: number, usage: string): void {
  if (args.length !== n) throw usageError(`expected ${usage}`);
}

async function deviceOp(ctx: Context, k: Kind, sub: string, vm: VmEntry, dev: string, method: string, extra: Wire, done: string): Promise<void> {
  const errCtx: ErrorContext = { op: `${k.word} ${sub}`, vm: label(vm), device: dev, deviceKind: k.word };
  const o = await runOperation(ctx, { method: `${k.module}.${method}`, args: { id: [vm.id, dev], ...extra }, label: `${k.word} ${sub} ${label(vm)}/${dev}`, errCtx });
  if (!o) return;
  if (ctx.json) ctx.printJson({ vm: vm.id, device: dev, task: o.task, elapsed: o.elapsed });
  else ctx.out(`${done} ${k.word} ${dev} of ${label(vm)} (${(o.elapsed * 1000).toFixed(0)} ms)`);
}

async function addDevice(ctx: Context, k: Kind, vm: VmEntry, record: Wire, plug: boolean): Promise<void> {
  const dev = (record.id as string[])[1]!;
  const errCtx: ErrorContext = { op: `${k.word} add`, vm: label(vm), device: dev, deviceKind: k.word };
  try {
    await ctx.rpc().call(`${k.module}.add`, { [k.key]: record });
  } catch (e) {
    if (e instanceof RpcFailure) throw explain(e.error, errCtx);
    throw e;
  }
  if (plug) {
    await deviceOp(ctx, k, 'plug', vm, dev, 'plug', {}, `Added and plugged`);
    return;
  }
  if (ctx.json) ctx.printJson({ vm: vm.id, device: dev, added: true });
  else ctx.out(`Added ${k.word} ${dev} to ${label(vm)}`);
}

function deviceCommand(k: Kind, subs: string[], usage: string[], examples: string[], summary: string, addSpec: (spec: string, vm: VmEntry, index: number, ctx: Context) => Wire): Command {
  return {
    name: k.word,
    summary,
    usage,
    options: {
      force: { type: 'boolean', short: 'f', description: 'unplug: do not wait for the guest to release the device' },
      plug: { type: 'boolean', description: 'add: plug the device at once (the VM must be running)' },
    },
    examples,
    args: { min: 1, max: 4 },
    complete: [subs, 'vm'],
    tasks: true,
    async run(ctx, positionals, values: Values) {
      const [sub, ...rest] = positionals;
      if (!subs.includes(sub!)) throw usageError(`unknown ${k.word} subcommand '${sub}'; use one of: ${subs.join(', ')}`);
      if (rest.length === 0) throw usageError(`'${k.word} ${sub}' needs a VM`);
      const vm = await resolveVm(ctx, rest[0]!);
      switch (sub) {
        case 'list': {
          need(rest, 1, `${k.word} list VM`);
          const devs = await listDevices(ctx, k, vm);
          if (ctx.json) return ctx.printJson(devs.map(([config, state]) => ({ device: (config.id as string[])[1], config, state })));
          if (devs.length === 0) return ctx.note(`VM ${label(vm)} has no ${k.word}s`);
          if (k === DISK) {
            const rows = devs.map(([d, s]) => [
              (d.id as string[])[1]!,
              String(d.ty),
              d.mode === 'ReadOnly' ? 'ro' : 'rw',
              showDisk(d.backend) || '(empty)',
              Array.isArray(d.position) ? (d.position as unknown[]).join(':') : 'auto',
              s.plugged ? 'yes' : 'no',
            ]);
            return ctx.out(renderTable(['DEVICE', 'TYPE', 'MODE', 'BACKEND', 'POSITION', 'PLUGGED'], rows));
          }
          const rows = devs.map(([d, s]) => {
            const b = d.backend as [string, unknown];
            return [(d.id as string[])[1]!, String(d.mac), b?.[0] === 'Local' ? String(b[1]) : JSON.stringify(b), String(d.mtu), s.plugged ? 'yes' : 'no', String(s.device ?? '-')];
          });
          return ctx.out(renderTable(['DEVICE', 'MAC', 'NETWORK', 'MTU', 'PLUGGED', 'BACKEND'], rows));
        }
        case 'add': {
          if (k === DISK) need(rest, 2, 'disk add VM SPEC');
          if (rest.length > 2) throw usageError(`expected ${k.word} add VM [SPEC]`);
          let record: Wire;
          try {
            const existing = k === NIC ? await listDevices(ctx, k, vm) : [];
            const positions = existing.map(([d]) => Number(d.position));
            const next = positions.length ? Math.max(...positions) + 1 : 0;
            record = addSpec(rest[1] ?? '', vm, next, ctx);
          } catch (e) {
            if (e instanceof DeviceSpecError) throw usageError(e.message);
            throw e;
          }
          return addDevice(ctx, k, vm, record, values.plug === true);
        }
        case 'remove': {
          need(rest, 2, `${k.word} remove VM DEVICE`);
          await call(ctx, `${k.module}.remove`, { id: [vm.id, rest[1]] }, { op: `${k.word} remove`, vm: label(vm), device: rest[1]!, deviceKind: k.word });
          if (ctx.json) return ctx.printJson({ vm: vm.id, device: rest[1], removed: true });
          return ctx.out(`Removed ${k.word} ${rest[1]} from ${label(vm)}`);
        }
        case 'plug':
          need(rest, 2, `${k.word} plug VM DEVICE`);
          return deviceOp(ctx, k, 'plug', vm, rest[1]!, 'plug', {}, 'Plugged');
        case 'unplug':
          need(rest, 2, `${k.word} unplug VM DEVICE`);
          return deviceOp(ctx, k, 'unplug', vm, rest[1]!, 'unplug', { force: values.force === true }, 'Unplugged');
        case 'eject':
          need(rest, 2, 'disk eject VM DEVICE');
          return deviceOp(ctx, k, 'eject', vm, rest[1]!, 'eject', {}, 'Ejected the medium of');
        case 'insert': {
          need(rest, 3, 'disk insert VM DEVICE PATH');
          let disk: unknown;
          try {
            disk = diskOfTarget(rest[2]!);
          } catch (e) {
            if (e instanceof DeviceSpecError) throw usageError(e.message);
            throw e;
          }
          return deviceOp(ctx, k, 'insert', vm, rest[1]!, 'insert', { disk }, `Inserted ${rest[2]} into`);
        }
      }
    },
  };
}

export const disk = deviceCommand(
  DISK,
  ['list', 'add', 'remove', 'plug', 'unplug', 'eject', 'insert'],
  ['disk list VM', 'disk add VM SPEC [--plug]', 'disk remove VM DEVICE', 'disk plug VM DEVICE', 'disk unplug VM DEVICE [--force]', 'disk eject VM DEVICE', 'disk insert VM DEVICE PATH'],
  ["xenops disk add web01 'phy:/dev/vg/web01-data,xvdb,w'", "xenops disk add web01 ',hdc:cdrom,r'", 'xenops disk insert web01 hdc /srv/iso/debian.iso', 'xenops disk list web01'],
  "manage a VM's disks (VBDs): list, add, remove, plug, unplug, eject, insert",
  (spec, vm) => parseDiskSpec(spec, vm.id),
);

export const nic = deviceCommand(
  NIC,
  ['list', 'add', 'remove', 'plug', 'unplug'],
  ['nic list VM', 'nic add VM [SPEC] [--plug]', 'nic remove VM DEVICE', 'nic plug VM DEVICE', 'nic unplug VM DEVICE [--force]'],
  ["xenops nic add web01 'mac=00:16:3e:00:00:01,bridge=xenbr0'", 'xenops nic list web01', 'xenops nic unplug web01 0'],
  "manage a VM's network interfaces (VIFs): list, add, remove, plug, unplug",
  (spec, vm, index, ctx) => parseVifSpec(spec, vm.id, index, (m) => ctx.warn(m)),
);
