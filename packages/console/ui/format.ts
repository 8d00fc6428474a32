/** How the console shows values: sizes, states, consoles, task progress. */
import type { Console, Task, VmState } from './wire.js';

export const mib = (bytes: number): string => `${Math.round(bytes / 1048576)} MiB`;

export const domidOf = (s: VmState): string => (s.domids.length ? s.domids.join(', ') : '—');

export const consolesOf = (s: VmState): string => s.consoles.map((c: Console) => `${c.protocol.toLowerCase()}:${c.port}`).join(' ') || '—';

/** A task's state in words and its progress (0..1). */
export function taskStatus(t: Task): { word: 'pending' | 'completed' | 'failed'; progress: number; detail: string } {
  const [tag, arg] = t.state;
  if (tag === 'Pending') return { word: 'pending', progress: typeof arg === 'number' ? arg : 0, detail: '' };
  if (tag === 'Completed') {
    const d = (arg as { duration?: number } | undefined)?.duration;
    return { word: 'completed', progress: 1, detail: d === undefined ? '' : `${(d * 1000).toFixed(0)} ms` };
  }
  const e = arg as string | [string, unknown];
  return { word: 'failed', progress: 1, detail: typeof e === 'string' ? e : `${e[0]}: ${typeof e[1] === 'string' ? e[1] : JSON.stringify(e[1])}` };
}

export const timeOf = (iso: string): string => (iso ? new Date(iso).toLocaleString() : '');
