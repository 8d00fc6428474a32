/** Helpers shared by the commands. */
import { CliError, ExitCode, usageError } from '../errors.js';
import type { Context } from '../context.js';
import { paintPower } from '../format/colour.js';
import { formatDuration } from '../format/units.js';
import { label, type VmEntry } from '../resolve.js';
import type { TaskOutcome } from '../wait.js';

/** Reports a finished VM operation: `Started web01: Running (0.05 s)`, or JSON. */
export async function reportVmOperation(ctx: Context, vm: VmEntry, done: string, outcomes: TaskOutcome[], extra: Record<string, unknown> = {}): Promise<void> {
  let power: string | undefined;
  try {
    const [, state] = await ctx.rpc().call<[unknown, { power_state: string }]>('VM.stat', { id: vm.id });
    power = state.power_state;
  } catch {
    power = undefined; // e.g. removed meanwhile
  }
  const elapsed = outcomes.length ? outcomes[outcomes.length - 1]!.elapsed : 0;
  if (ctx.json) {
    ctx.printJson({
      vm: vm.id,
      name: vm.name,
      tasks: outcomes.map((o) => o.task),
      ...(power ? { power_state: power } : {}),
      elapsed,
      duration: outcomes.reduce((s, o) => s + o.duration, 0),
      ...extra,
    });
    return;
  }
  ctx.out(`${done} ${label(vm)}${power ? `: ${paintPower(ctx.paint, power)}` : ''} (${formatDuration(elapsed)})`);
}

export function parseNonNegative(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw usageError(`${flag} expects a number of seconds (0 or more), not "${text}"`);
  return n;
}

export function parsePositiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) throw usageError(`${what} must be a whole number of at least 1, not "${text}"`);
  return n;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export const notAvailable = (what: string, needs: string): CliError =>
  new CliError(`${what} is not available from this server yet (${needs})`, ExitCode.UNIMPLEMENTED);

/** `["Local", "/x"]` → `/x`; `["VDI", "sr/vdi"]` → `vdi:sr/vdi`. */
export function showDisk(d: unknown): string {
  if (!Array.isArray(d) || d.length === 0) return '';
  const inner = d.length === 1 && Array.isArray(d[0]) ? d[0] : d; // option wrapper
  if (inner[0] === 'VDI') return `vdi:${String(inner[1])}`;
  return String(inner[1] ?? '');
}
