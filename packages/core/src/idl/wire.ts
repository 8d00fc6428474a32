/**
 * The codec-neutral value tree that sits between the wire formats (XML-RPC, JSON) and the IDL.
 *
 * Decoding: XML-RPC and JSON parsers produce `WireIn` (plain JS values; structs are objects whose
 * keys are all own properties, so keys such as `__proto__` are data). The IDL decoders are lenient
 * over it and read own keys only.
 *
 * Encoding: the IDL produces `WireOut`, which keeps what JSON cannot say on its own:
 * a float that happens to be integral (`RpcDouble`, so XML-RPC emits `<double>`) and struct key
 * order for keys that look like integers (`WireStruct`, a Map).
 */
export type WireIn = string | number | boolean | null | WireIn[] | { [key: string]: WireIn };

export class RpcDouble {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
}

export type WireStruct = Map<string, WireOut>;
export type WireOut = string | number | boolean | null | RpcDouble | WireOut[] | WireStruct;

export function isWireStruct(v: unknown): v is WireStruct {
  return v instanceof Map;
}

/** A struct literal in key order. */
export function struct(entries: Iterable<readonly [string, WireOut]>): WireStruct {
  return new Map(entries);
}

export function isWireObject(v: unknown): v is { [key: string]: WireIn } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && !(v instanceof RpcDouble);
}

/**
 * Serialises a WireOut as compact JSON text: what `JSON.stringify` prints, with struct key order
 * kept. Most trees have no key that a JS object would reorder (an integer-like key) or treat
 * specially (`__proto__`), so they are copied into plain objects and handed to the native
 * `JSON.stringify` (3-4x faster than building the text here, and much less garbage on a 10,000-VM
 * `VM.list`); the rest are printed key by key.
 */
export function wireToJson(v: WireOut): string {
  const plain = toPlain(v);
  return plain === KEEP_ORDER ? orderedJson(v) : JSON.stringify(plain);
}

const KEEP_ORDER: unique symbol = Symbol('keep key order');
const INTEGER_LIKE_KEY = /^(?:0|[1-9]\d*)$/;

type Plain = string | number | boolean | null | RpcDouble | Plain[] | { [key: string]: Plain };

function toPlain(v: WireOut): Plain | typeof KEEP_ORDER {
  if (v === null || typeof v !== 'object' || v instanceof RpcDouble) return v; // RpcDouble has toJSON
  if (Array.isArray(v)) {
    const out: Plain[] = new Array<Plain>(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = toPlain(v[i]!);
      if (x === KEEP_ORDER) return KEEP_ORDER;
      out[i] = x;
    }
    return out;
  }
  const out: { [key: string]: Plain } = {};
  for (const [k, x] of v) {
    if (k === '__proto__' || INTEGER_LIKE_KEY.test(k)) return KEEP_ORDER;
    const p = toPlain(x);
    if (p === KEEP_ORDER) return KEEP_ORDER;
    out[k] = p;
  }
  return out;
}

function orderedJson(v: WireOut): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v instanceof RpcDouble) return Number.isFinite(v.value) ? String(v.value) : 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + orderedJson(v[i]!);
    return out + ']';
  }
  let out = '{';
  let first = true;
  for (const [k, x] of v) {
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + orderedJson(x);
    first = false;
  }
  return out + '}';
}

/**
 * Parses JSON text into WireIn. `JSON.parse` defines every key as an own data property (a
 * `"__proto__"` key is ordinary data, never a prototype change), and every reader of wire values
 * looks at own keys only (`Object.keys`, `hasOwnProperty`), so no reviver is needed: it would
 * cost a call per value on every request and every stored configuration.
 */
export function parseJsonWire(text: string): WireIn {
  return JSON.parse(text) as WireIn;
}
