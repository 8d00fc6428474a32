/** Small conversions between the decoder's `WireIn`, the encoder's `WireOut` and arbitrary values. */
import { RpcDouble, type WireIn, type WireOut } from './wire.js';

/** A decoded value as an encodable one (used to echo JSON-RPC ids). Object key order is kept. */
export function wireInToOut(v: WireIn): WireOut {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(wireInToOut);
  const m = new Map<string, WireOut>();
  for (const k of Object.keys(v)) m.set(k, wireInToOut(v[k]!));
  return m;
}

/**
 * Any JS value as a WireOut (for error payloads of unknown provenance, e.g. `ErrorValue`'s
 * `unknown` payload). `undefined`, functions and symbols become `null`; bigints become numbers
 * (or decimal strings when unsafe); plain objects become structs in key order.
 */
export function toWireOut(v: unknown): WireOut {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return v;
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'object':
      break;
    default:
      return null;
  }
  if (v instanceof RpcDouble) return v;
  if (Array.isArray(v)) return v.map(toWireOut);
  if (v instanceof Map) {
    const m = new Map<string, WireOut>();
    for (const [k, x] of v) m.set(String(k), toWireOut(x));
    return m;
  }
  const m = new Map<string, WireOut>();
  for (const k of Object.keys(v)) m.set(k, toWireOut((v as Record<string, unknown>)[k]));
  return m;
}
