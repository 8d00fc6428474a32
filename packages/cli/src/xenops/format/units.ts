/** Sizes and durations as people write them. */
import { usageError } from '../errors.js';

const MiB = 1024 * 1024;

/** Bytes as `512M`, `1G`, `1.5G`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * MiB && n % (1024 * MiB) === 0) return `${n / (1024 * 1024 * MiB)}T`;
  if (n >= 1024 * MiB) return `${+(n / (1024 * MiB)).toFixed(2)}G`;
  if (n >= MiB) return `${+(n / MiB).toFixed(2)}M`;
  if (n >= 1024) return `${+(n / 1024).toFixed(2)}K`;
  return `${n}B`;
}

/**
 * A memory size: a bare number is MiB (as in xl), else a number with a unit suffix
 * `B`, `K`, `M`, `G`, `T` (powers of 1024; `KiB`, `MB` etc. accepted).
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw usageError(`invalid ${what} "${text}"; write e.g. 512 (MiB), 512M or 2G`);
  const unit = (m[2] || 'm').toLowerCase();
  const mult = { b: 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[unit as 'b']!;
  const bytes = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes)) throw usageError(`${what} "${text}" is too large`);
  return bytes;
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${(seconds * 1000).toFixed(0)} ms`;
  if (seconds < 60) return `${seconds.toFixed(2)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${(seconds - m * 60).toFixed(0)} s`;
}

export function formatAge(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.floor(seconds))}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}
