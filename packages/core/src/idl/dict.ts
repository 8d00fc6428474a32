/**
 * Helpers for the internal `dict<T>` representation: an array of `[key, value]` pairs with unique
 * keys in insertion order (it keeps wire key order, which a JS object would not for integer-like
 * keys, and has no prototype pitfalls with keys such as `__proto__`).
 */
import type { Dict } from './descriptor.js';

export function dictGet<T>(d: Dict<T>, key: string): T | undefined {
  for (const [k, v] of d) if (k === key) return v;
  return undefined;
}

/** A copy of `d` with `key` set: replaced in place if present, else appended. */
export function dictSet<T>(d: Dict<T>, key: string, value: T): Dict<T> {
  let found = false;
  const out: Dict<T> = d.map(([k, v]) => {
    if (k !== key) return [k, v];
    found = true;
    return [k, value];
  });
  if (!found) out.push([key, value]);
  return out;
}

/** `base` with every entry of `updates` written over it in order (keys added or replaced, never deleted). */
export function dictMerge<T>(base: ReadonlyArray<readonly [string, T]>, updates: ReadonlyArray<readonly [string, T]>): Dict<T> {
  const out = new Map<string, T>(base);
  for (const [k, v] of updates) out.set(k, v);
  return [...out];
}
