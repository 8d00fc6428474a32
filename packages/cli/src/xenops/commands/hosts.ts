/** `xenops hosts`: the hosts of the cluster (API.md §9.7, HOST.list). */
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { RpcFailure } from '../client/rpc.js';
import { renderTable } from '../format/table.js';
import { formatAge, formatBytes } from '../format/units.js';
import { call } from '../wait.js';

export interface HostRecordWire {
  readonly id: string;
  readonly backend: string;
  readonly version: string;
  readonly state: string;
  readonly started_at: number;
  readonly last_seen: number;
  readonly addresses: string[];
  readonly cpus: number;
  readonly memory_total: number;
  readonly memory_free: number;
  readonly vms: string[];
  readonly running: number;
}

export async function listHosts(ctx: Context): Promise<HostRecordWire[]> {
  return call<HostRecordWire[]>(ctx, 'HOST.list', {}, { op: 'hosts' });
}

/**
 * The host of each VM (its owner), from HOST.list; empty from a server without HOST.list (an older
 * xenops-ts or another xenopsd), where `xenops list` then shows no host.
 */
export async function hostOfVms(ctx: Context): Promise<Map<string, string>> {
  let hosts: HostRecordWire[];
  try {
    hosts = await ctx.rpc().call<HostRecordWire[]>('HOST.list', {});
  } catch (e) {
    if (e instanceof RpcFailure && e.tag === 'Unimplemented') return new Map();
    throw e;
  }
  const out = new Map<string, string>();
  for (const h of hosts) for (const vm of h.vms) out.set(vm, h.id);
  return out;
}

export const hosts: Command = {
  name: 'hosts',
  summary: 'list the hosts of the cluster: state, memory, VMs',
  usage: 'hosts',
  description:
    'A host is Up while its agent refreshes its registration (every few seconds), Down once it\n' +
    'has not for 15 s (xenopsd --host-down-after-s). Embedded mode has one host.',
  examples: ['xenops hosts', 'xenops hosts --json'],
  args: { min: 0, max: 0 },
  async run(ctx) {
    const records = await listHosts(ctx);
    if (ctx.json) return ctx.printJson(records);
    const now = Date.now() / 1000;
    ctx.out(
      renderTable(
        [
          'HOST',
          'STATE',
          'BACKEND',
          { header: 'CPUS', align: 'right' },
          { header: 'MEMORY', align: 'right' },
          { header: 'FREE', align: 'right' },
          { header: 'VMS', align: 'right' },
          { header: 'RUNNING', align: 'right' },
          'LAST SEEN',
          'ADDRESSES',
        ],
        records.map((h) => [
          h.id,
          h.state,
          h.backend,
          String(h.cpus),
          formatBytes(h.memory_total),
          formatBytes(h.memory_free),
          String(h.vms.length),
          String(h.running),
          h.last_seen > 0 ? `${formatAge(Math.max(0, now - h.last_seen))} ago` : 'never',
          h.addresses.join(' ') || '-',
        ]),
      ),
    );
  },
};
