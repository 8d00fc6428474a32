/**
 * VM names on the command line: a full uuid, a unique uuid prefix, or a name. An exact id wins,
 * then an exact name (it must be unique), then a unique id prefix.
 */
import { CliError, ExitCode } from './errors.js';
import type { Context } from './context.js';

export interface VmEntry {
  id: string;
  name: string;
  power: string;
  config: Record<string, unknown>;
  state: Record<string, unknown>;
}

export function toEntries(list: unknown): VmEntry[] {
  if (!Array.isArray(list)) return [];
  return list.map((pair) => {
    const [config, state] = pair as [Record<string, unknown>, Record<string, unknown>];
    return { id: String(config.id), name: String(config.name ?? ''), power: String(state?.power_state ?? '?'), config, state };
  });
}

export function resolveIn(query: string, vms: readonly VmEntry[]): VmEntry {
  if (query === '') throw new CliError('a VM name or uuid must not be empty', ExitCode.USAGE);
  const exact = vms.find((v) => v.id === query);
  if (exact) return exact;
  const byName = vms.filter((v) => v.name === query);
  if (byName.length === 1) return byName[0]!;
  const show = (vs: readonly VmEntry[]) => vs.map((v) => `${v.id} (${v.name})`).join(', ');
  if (byName.length > 1) {
    throw new CliError(`the name '${query}' is ambiguous: ${byName.length} VMs have it: ${show(byName)}; use a uuid or a unique uuid prefix`, ExitCode.USAGE);
  }
  const q = query.toLowerCase();
  const byPrefix = vms.filter((v) => v.id.toLowerCase().startsWith(q));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) {
    throw new CliError(`the uuid prefix '${query}' is ambiguous: it matches ${show(byPrefix)}; type more of the uuid`, ExitCode.USAGE);
  }
  throw new CliError(`no VM is called '${query}' (by uuid, uuid prefix or name); 'xenops list' shows the VMs`, ExitCode.NOT_FOUND);
}

export async function listVms(ctx: Context): Promise<VmEntry[]> {
  return toEntries(await ctx.rpc().call('VM.list', { unit: null }));
}

export async function resolveVm(ctx: Context, query: string): Promise<VmEntry> {
  return resolveIn(query, await listVms(ctx));
}

/** How to show a VM in messages: its name when it has a useful one, else its id. */
export const label = (vm: VmEntry): string => (vm.name && vm.name !== 'unnamed' ? vm.name : vm.id);
