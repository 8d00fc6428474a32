/** `xenops list`: every VM with its power state (API.md §5.2 VM.list). */
import { usageError } from '../errors.js';
import type { Command } from '../command.js';
import { paintPower } from '../format/colour.js';
import { renderTable } from '../format/table.js';
import { formatBytes } from '../format/units.js';
import { listVms } from '../resolve.js';
import { str } from './common.js';
import { hostOfVms } from './hosts.js';

const STATES = ['Running', 'Paused', 'Suspended', 'Halted'];

export const list: Command = {
  name: 'list',
  aliases: ['ls'],
  summary: 'list the VMs',
  usage: 'list [--state STATE]',
  options: { state: { type: 'string', value: 'STATE', description: 'only VMs in this power state (Running, Paused, Suspended, Halted)' } },
  examples: ['xenops list', 'xenops list --state Running', 'xenops list --json'],
  args: { min: 0, max: 0 },
  async run(ctx, _p, values) {
    const want = str(values.state);
    const state = want === undefined ? undefined : STATES.find((s) => s.toLowerCase() === want.toLowerCase());
    if (want !== undefined && !state) throw usageError(`--state must be one of ${STATES.join(', ')}, not "${want}"`);
    const vms = (await listVms(ctx)).filter((v) => !state || v.power === state);
    // The host each VM belongs to (§9.7); a VM no host owns shows none.
    const hostOf = await hostOfVms(ctx);
    if (ctx.json) {
      ctx.printJson(
        vms.map((v) => ({
          id: v.id,
          name: v.name,
          power_state: v.power,
          host: hostOf.get(v.id) ?? null,
          domids: v.state.domids ?? [],
          vcpus: v.config.vcpus,
          memory_dynamic_max: v.config.memory_dynamic_max,
          builder: Array.isArray(v.config.ty) ? v.config.ty[0] : undefined,
        })),
      );
      return;
    }
    if (vms.length === 0) {
      ctx.note(state ? `no ${state} VMs` : "no VMs; add one with 'xenops add CONFIG'");
      return;
    }
    const rows = vms.map((v) => {
      const domids = (v.state.domids as number[] | undefined) ?? [];
      return [
        v.id,
        v.name,
        paintPower(ctx.paint, v.power),
        hostOf.get(v.id) ?? '-',
        domids.length ? domids.join(',') : '-',
        Array.isArray(v.config.ty) ? String(v.config.ty[0]) : '?',
        String(v.config.vcpus ?? '?'),
        formatBytes(Number(v.config.memory_dynamic_max)),
      ];
    });
    ctx.out(
      renderTable(
        ['UUID', 'NAME', 'STATE', 'HOST', { header: 'DOMID', align: 'right' }, 'TYPE', { header: 'VCPUS', align: 'right' }, { header: 'MEMORY', align: 'right' }],
        rows,
      ),
    );
  },
};
