import { decodeArgument, Errors, XenopsError, type AnyType, type WireIn } from '@xenops/core';
import type { RpcParams } from '../rpc/params.js';

export interface ArgSpec {
  readonly key: string;
  readonly type: AnyType;
  /** `as_of` exists only in the named form (§9.6). */
  readonly namedOnly?: boolean;
}

/** An argument problem: answered as JSON-RPC 2.0 "invalid params" (-32602). */
export class ArgumentError extends XenopsError {}

export interface DecodedArgs {
  readonly dbg: string;
  readonly values: Record<string, unknown>;
}

/**
 * Decodes a call's arguments (API.md §2.5): named (keys ignoring case, unknown keys ignored) or
 * positional (debug string first, then the table's order). Absent arguments take the default of
 * their type (unit, option, bool, dict) or fail `Expecting named argument '<key>'`.
 */
export function decodeArgs(params: RpcParams, specs: readonly ArgSpec[]): DecodedArgs {
  try {
    switch (params.form) {
      case 'malformed':
        throw Errors.internal('malformed params');
      case 'none':
        return { dbg: '', values: decodeNamed(Object.create(null), specs) };
      case 'named': {
        const byKey = new Map<string, WireIn>();
        for (const [k, v] of Object.entries(params.args)) byKey.set(k.toLowerCase(), v);
        return { dbg: debugString(byKey), values: decodeNamed(byKey, specs) };
      }
      case 'positional': {
        const values: Record<string, unknown> = {};
        const positional = specs.filter((s) => !s.namedOnly);
        positional.forEach((spec, i) => {
          values[spec.key] = decodeArgument(spec.type, params.args[i], spec.key);
        });
        for (const spec of specs) if (spec.namedOnly) values[spec.key] = decodeArgument(spec.type, undefined, spec.key);
        return { dbg: params.dbg ?? '', values };
      }
    }
  } catch (e) {
    if (e instanceof XenopsError && !(e instanceof ArgumentError)) throw new ArgumentError(e.value);
    throw e;
  }
}

function decodeNamed(byKey: Map<string, WireIn> | Record<string, never>, specs: readonly ArgSpec[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const spec of specs) {
    const w = byKey instanceof Map ? byKey.get(spec.key.toLowerCase()) : undefined;
    values[spec.key] = decodeArgument(spec.type, w, spec.key);
  }
  return values;
}

/** `debug_info` wins over `dbg` (§1.1); absent: the empty string. */
function debugString(byKey: Map<string, WireIn>): string {
  const v = byKey.get('debug_info') ?? byKey.get('dbg');
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw Errors.internal(`Type error at ${byKey.has('debug_info') ? 'debug_info' : 'dbg'}: expected string`);
  return v;
}
