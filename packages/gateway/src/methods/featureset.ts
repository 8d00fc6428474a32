import { typeError } from '@xenops/core';

/**
 * CPU featuresets (API.md §4.11): words of 8 hex digits joined by `-`; `""` is the empty set.
 * Parsed into 32-bit words so policies can be combined and compared.
 */
export function parseFeatureset(text: string, what: string): number[] {
  if (text === '') return [];
  const words = text.split('-');
  if (!words.every((w) => /^[0-9a-fA-F]{8}$/.test(w))) {
    // §6.3's wrong-shape message, at the argument (the fuzz suite found the old free-form text).
    throw typeError(what, "a CPU featureset (words of 8 hex digits joined by '-')", text);
  }
  return words.map((w) => parseInt(w, 16) >>> 0);
}

export function formatFeatureset(words: readonly number[]): string {
  return words.map((w) => (w >>> 0).toString(16).padStart(8, '0')).join('-');
}

/** Word-wise AND; the shorter policy is zero-extended (HOST.combine_cpu_policies). */
export function combinePolicies(a: readonly number[], b: readonly number[]): number[] {
  const length = Math.max(a.length, b.length);
  return Array.from({ length }, (_, i) => ((a[i] ?? 0) & (b[i] ?? 0)) >>> 0);
}

/** Every bit of the VM's policy is set in the host's (HOST.is_compatible). */
export function isCompatible(vm: readonly number[], host: readonly number[]): boolean {
  return vm.every((w, i) => ((w & ~(host[i] ?? 0)) >>> 0) === 0);
}
