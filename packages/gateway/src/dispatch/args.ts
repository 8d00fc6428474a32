import { decodeArgument, Errors, XenopsError, type AnyArgDeclaration, type WireIn } from '@xenops/core';
import type { RpcParams } from '../rpc/params.js';

/** An argument problem: answered as JSON-RPC 2.0 "invalid params" (-32602). */
export class ArgumentError extends XenopsError {}

export interface DecodedArgs {
  readonly dbg: string;
  readonly values: Record<string, unknown>;
  /** An argument as it came on the wire (named: key ignoring case; positional: by table order). */
  readonly wire: (key: string) => WireIn | undefined;
}

/**
 * Decodes a call's arguments (API.md §2.5) by a method's declared arguments: named (keys ignoring
 * case, unknown keys ignored) or positional (debug string first, then the table's order). Absent
 * arguments take the default of their type (unit, option, bool, dict) or fail
 * `Expecting named argument '<key>'`.
 */
export function decodeArgs(params: RpcParams, specs: readonly AnyArgDeclaration[]): DecodedArgs {
  try {
    switch (params.form) {
      case 'malformed':
        throw Errors.internal('malformed params');
      case 'none':
        return { dbg: '', values: decodeNamed(new Map(), specs), wire: () => undefined };
      case 'named': {
        const byKey = new Map<string, WireIn>();
        for (const [k, v] of Object.entries(params.args)) byKey.set(k.toLowerCase(), v);
        return { dbg: debugString(byKey), values: decodeNamed(byKey, specs), wire: (key) => byKey.get(key.toLowerCase()) };
      }
      case 'positional': {
        const values: Record<string, unknown> = {};
        const positional = specs.filter((s) => !s.namedOnly);
        positional.forEach((spec, i) => {
          values[spec.key] = decodeArgument(spec.type, params.args[i], spec.key);
        });
        for (const spec of specs) if (spec.namedOnly) values[spec.key] = decodeArgument(spec.type, undefined, spec.key);
        const wire = (key: string) => {
          const i = positional.findIndex((s) => s.key === key);
          return i < 0 ? undefined : params.args[i];
        };
        return { dbg: params.dbg ?? '', values, wire };
      }
    }
  } catch (e) {
    if (e instanceof XenopsError && !(e instanceof ArgumentError)) throw new ArgumentError(e.value);
    throw e;
  }
}

function decodeNamed(byKey: Map<string, WireIn>, specs: readonly AnyArgDeclaration[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const spec of specs) values[spec.key] = decodeArgument(spec.type, byKey.get(spec.key.toLowerCase()), spec.key);
  return values;
}

/** `debug_info` wins over `dbg` (§1.1); absent: the empty string. */
function debugString(byKey: Map<string, WireIn>): string {
  const v = byKey.get('debug_info') ?? byKey.get('dbg');
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw Errors.internal(`Type error at ${byKey.has('debug_info') ? 'debug_info' : 'dbg'}: expected string`);
  return v;
}
