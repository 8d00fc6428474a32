/**
 * Argument forms (API.md §2.5), shared by XML-RPC and JSON-RPC.
 *
 * * named: params is a one-element array holding a struct/object, or (JSON-RPC v2 only) an object;
 * * positional: params is an array whose first element is a string (the debug string);
 * * none: params is an empty array, absent or null;
 * * malformed: anything else (`[1, 2]`, two objects, a v1 object, a scalar).
 */
import { isWireObject, type WireIn } from './wire.js';

export type RpcParams =
  | { form: 'named'; args: { [k: string]: WireIn } }
  | { form: 'positional'; dbg: string | undefined; args: WireIn[] }
  | { form: 'none' }
  | { form: 'malformed' };

export interface ClassifyOptions {
  /** Accept a bare object as the named form (JSON-RPC v2). Default false. */
  allowObject?: boolean;
}

/**
 * Classifies a params value. For XML-RPC pass the array of decoded `<param>` values; for JSON-RPC
 * the `params` member (`undefined` when absent).
 */
export function classifyParams(params: WireIn | undefined, opts: ClassifyOptions = {}): RpcParams {
  if (params === undefined || params === null) return { form: 'none' };
  if (Array.isArray(params)) {
    if (params.length === 0) return { form: 'none' };
    const first = params[0]!;
    if (params.length === 1 && isWireObject(first)) return { form: 'named', args: first };
    if (typeof first === 'string') return { form: 'positional', dbg: first, args: params.slice(1) };
    return { form: 'malformed' };
  }
  if (opts.allowObject && isWireObject(params)) return { form: 'named', args: params };
  return { form: 'malformed' };
}
