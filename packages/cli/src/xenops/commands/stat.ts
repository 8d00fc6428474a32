/** `xenops stat`: one VM's configuration and run-time state (API.md §4.2, §4.3, VM.stat). */
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { RpcFailure } from '../client/rpc.js';
import { paintPower } from '../format/colour.js';
import { renderFields } from '../format/table.js';
import { formatBytes } from '../format/units.js';
import { resolveVm, label } from '../resolve.js';
import { call } from '../wait.js';
import { showDisk } from './common.js';

type Wire = Record<string, unknown>;

/** Device list, or undefined when the server does not offer it yet. */
export async function deviceList(ctx: Context, method: string, vmId: string): Promise<Array<[Wire, Wire]> | undefined> {
  try {
    return await ctx.rpc().call<Array<[Wire, Wire]>>(method, { id: vmId });
  } catch (e) {
    if (e instanceof RpcFailure && e.tag === 'Unimplemented') return undefined;
    throw e;
  }
}

function describeBuilder(ty: unknown): string {
  if (!Array.isArray(ty)) return '?';
  const [kind, info] = ty as [string, Wire];
  if (kind === 'HVM') {
    const fw = Array.isArray(info.firmware) ? 'UEFI' : 'BIOS';
    return `HVM (${fw}${info.boot_order ? `, boot order ${String(info.boot_order)}` : ''})`;
  }
  const boot = info.boot as [string, Wire] | undefined;
  if (boot?.[0] === 'Direct') return `${kind} (kernel ${String(boot[1].kernel)}${boot[1].cmdline ? `, cmdline "${String(boot[1].cmdline)}"` : ''})`;
  if (boot?.[0] === 'Indirect') return `${kind} (bootloader ${String(boot[1].bootloader)})`;
  return kind;
}

export const stat: Command = {
  name: 'stat',
  aliases: ['info'],
  summary: "show a VM's configuration, state and devices",
  usage: 'stat VM',
  examples: ['xenops stat web01', 'xenops stat 5f0c --json'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  async run(ctx, [q]) {
    const vm = await resolveVm(ctx, q!);
    const [config, state] = await call<[Wire, Wire]>(ctx, 'VM.stat', { id: vm.id }, { op: 'stat', vm: label(vm) });
    const vbds = await deviceList(ctx, 'VBD.list', vm.id);
    const vifs = await deviceList(ctx, 'VIF.list', vm.id);
    if (ctx.json) {
      ctx.printJson({ id: vm.id, name: config.name, config, state, ...(vbds ? { vbds } : {}), ...(vifs ? { vifs } : {}) });
      return;
    }
    const n = (k: string) => Number(config[k]);
    const domids = (state.domids as number[]) ?? [];
    const consoles = ((state.consoles as Wire[]) ?? []).map((c) => `${String(c.protocol).toLowerCase()}:${String(c.port)}`);
    const fields: Array<[string, string]> = [
      ['uuid', vm.id],
      ['name', String(config.name)],
      ['power state', paintPower(ctx.paint, String(state.power_state))],
      ['domid', domids.length ? domids.join(',') : '-'],
      ['builder', describeBuilder(config.ty)],
      ['vcpus', `${String(config.vcpus)} (max ${String(config.vcpu_max)})${Number(state.vcpu_target) ? `, online ${String(state.vcpu_target)}` : ''}`],
      [
        'memory',
        `${formatBytes(n('memory_dynamic_min'))}–${formatBytes(n('memory_dynamic_max'))} (static max ${formatBytes(n('memory_static_max'))})` +
          (Number(state.memory_actual) ? `, actual ${formatBytes(Number(state.memory_actual))}` : ''),
      ],
      ['on shutdown', ((config.on_shutdown as string[]) ?? []).join(', ')],
      ['on reboot', ((config.on_reboot as string[]) ?? []).join(', ')],
      ['on crash', ((config.on_crash as string[]) ?? []).join(', ')],
    ];
    if (consoles.length) fields.push(['consoles', consoles.join(' ')]);
    if (Number(state.last_start_time) > 0) fields.push(['started', new Date(Number(state.last_start_time) * 1000).toISOString()]);
    if (vbds) {
      fields.push([
        'disks',
        vbds.length
          ? vbds.map(([d, s]) => `${(d.id as string[])[1]} ${showDisk(d.backend) || '(empty)'}${s.plugged ? ' [plugged]' : ''}`).join('; ')
          : '-',
      ]);
    }
    if (vifs) fields.push(['nics', vifs.length ? vifs.map(([d, s]) => `${(d.id as string[])[1]} ${String(d.mac)}${s.plugged ? ' [plugged]' : ''}`).join('; ') : '-']);
    ctx.out(renderFields(fields));
  },
};
