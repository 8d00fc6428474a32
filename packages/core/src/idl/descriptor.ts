/**
 * Runtime type descriptors: every API type is declared once (in the sibling files) with these
 * combinators, and its TypeScript type, lenient decoder, strict per-dialect encoder and defaults
 * all derive from that one declaration (API.md §3, §4).
 *
 * ## Internal representation (what `decode` returns and `encode` takes)
 *
 * | descriptor            | internal value                                                            |
 * |-----------------------|---------------------------------------------------------------------------|
 * | `string`              | `string`                                                                  |
 * | `int`, `int32`        | `number` (a safe integer; int32 range for `int32`)                        |
 * | `float`               | `number`                                                                  |
 * | `bool`                | `boolean`                                                                 |
 * | `unit`                | `null`                                                                    |
 * | `option(t)`           | `T \| undefined`; in a record the property is simply absent for None       |
 * | `list(t)`             | `T[]`                                                                     |
 * | `dict(t)`             | `Array<[string, T]>`: pairs, keys unique, insertion order kept (see dict.ts)|
 * | `tuple(a, b, …)`      | `[A, B, …]`                                                               |
 * | `record(name, f)`     | a plain object keyed by the xenopsd wire names (snake_case)               |
 * | `variant(name, c)`    | nullary constructor: the canonical tag string (`'Running'`);              |
 * |                       | constructor with an argument: the tuple `[tag, arg]` (`['HVM', {...}]`)   |
 * | `any`                 | the decoded wire value as is (WireIn); encoded back with `toWireOut`      |
 *
 * ## Positions of options (§3)
 *
 * An option held by a record field or a named argument is "bare": None is a missing key, Some x
 * is x itself. Everywhere else (tuple/list element, variant argument, method result) it is `[]` /
 * `[x]`. `option(t).decode/encode` implement the second form; `decodeField`/`encodeField` below
 * implement the first and are what records (and the gateway's argument decoding) use.
 *
 * ## Dialects
 *
 * Decoding is shared by both dialects (§4.12: "the decoder is shared"). Encoding takes a dialect:
 * `xenopsd` (the modern wire), `seed` (the 2012 shapes of §4.12) or `internal` (the xenopsd
 * encoding plus internal-only fields such as Vm `transient`; used for the log, must round-trip).
 */
import { Errors, type XenopsError } from '../errors.js';
import { RpcDouble, isWireStruct, type WireOut, type WireStruct } from './wire.js';
import { wirePath } from './wire-checks.js';

export type Dialect = 'xenopsd' | 'seed' | 'internal';

export type Kind =
  | 'string'
  | 'int'
  | 'int32'
  | 'float'
  | 'bool'
  | 'unit'
  | 'option'
  | 'list'
  | 'dict'
  | 'tuple'
  | 'record'
  | 'variant'
  | 'any';

export interface Type<T> {
  readonly kind: Kind;
  /** Human name used in error messages (`No value found for key 'id' in Vm.t`). */
  readonly name: string;
  /** Lenient decoder over WireIn (also accepts WireOut: Maps and RpcDoubles). Throws `XenopsError`. */
  decode(w: unknown, path: string): T;
  /** Strict encoder to the codec-neutral WireOut tree. */
  encode(v: T, dialect: Dialect): WireOut;
}

// biome-ignore lint: `any` is needed so that descriptors of every T are assignable here.
export type AnyType = Type<any>;

/** The internal TypeScript type described by a descriptor. */
export type Infer<D> = D extends Type<infer T> ? T : never;

export interface OptionType<T> extends Type<T | undefined> {
  readonly kind: 'option';
  readonly inner: Type<T>;
}
export interface ListType<T> extends Type<T[]> {
  readonly kind: 'list';
  readonly element: Type<T>;
}
export type Dict<T> = Array<[string, T]>;
export interface DictType<T> extends Type<Dict<T>> {
  readonly kind: 'dict';
  readonly value: Type<T>;
}
export interface TupleType<T extends unknown[]> extends Type<T> {
  readonly kind: 'tuple';
  readonly elements: readonly AnyType[];
}
export interface FieldInfo {
  readonly key: string;
  readonly type: AnyType;
  readonly hasDefault: boolean;
  /** A fresh copy of the default (only when `hasDefault`). */
  defaultValue(): unknown;
  /** Dialects whose encoder emits this field; all when absent. */
  readonly dialects?: readonly Dialect[];
}
export interface RecordType<T> extends Type<T> {
  readonly kind: 'record';
  readonly fields: readonly FieldInfo[];
}
export interface VariantType<T> extends Type<T> {
  readonly kind: 'variant';
  /** Canonical tag → argument descriptor, or `null` for a constructor without argument. */
  readonly ctors: ReadonlyMap<string, AnyType | null>;
  /** What an unknown tag decodes to, when the type has such a default (§3). */
  readonly fallback?: T;
  /** The canonical spelling of a tag matched ignoring case, or undefined. */
  canonicalTag(tag: string): string | undefined;
}

/** Narrowing helpers: `isOption(t) && t.inner`, `isRecord(t) && t.fields`, ... */
export const isOption = (t: AnyType): t is OptionType<unknown> => t.kind === 'option';
export const isList = (t: AnyType): t is ListType<unknown> => t.kind === 'list';
export const isDict = (t: AnyType): t is DictType<unknown> => t.kind === 'dict';
export const isRecord = (t: AnyType): t is RecordType<unknown> => t.kind === 'record' && 'fields' in t;
export const isVariant = (t: AnyType): t is VariantType<unknown> => t.kind === 'variant';

// ---------------------------------------------------------------------------------------------
// Errors (§6.3 prefixes)

export function typeError(path: string, shape: string, got?: unknown): XenopsError {
  return Errors.internal(`Type error at ${path || '<root>'}: expected ${shape}${got === undefined ? '' : `, got ${preview(got)}`}`);
}
export function outOfRange(path: string, detail?: string): XenopsError {
  return Errors.internal(`Integer out of range at ${path || '<root>'}${detail ? `: ${detail}` : ''}`);
}
export function missingKey(key: string, typeName: string): XenopsError {
  return Errors.internal(`No value found for key '${key}' in ${typeName}`);
}
export function invalidId(): XenopsError {
  return Errors.internal('invalid id');
}

/** A short single-line rendering of a wire value for error messages. */
function preview(w: unknown): string {
  if (typeof w === 'number' && !Number.isFinite(w)) return String(w); // JSON would say null
  let s: string;
  try {
    s = JSON.stringify(toWireOut(w), (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v)) ?? String(w);
  } catch {
    s = String(w);
  }
  if (s.length <= 60) return s;
  // Never cut a surrogate pair in half: the message must stay well-formed.
  const cut = /[\uD800-\uDBFF]/.test(s[56]!) ? 56 : 57;
  return `${s.slice(0, cut)}...`;
}

export function joinPath(path: string, segment: string | number): string {
  if (typeof segment === 'number') return `${path}[${segment}]`;
  return path ? `${path}.${segment}` : segment;
}


// ---------------------------------------------------------------------------------------------
// Struct access over the shapes parsers give (null-prototype objects) and encoders give (Maps)

/** A struct as parsers give it (an object of own keys), not a Map, list or double. */
function isObjectStruct(w: unknown): w is Record<string, unknown> {
  return typeof w === 'object' && w !== null && !Array.isArray(w) && !(w instanceof RpcDouble) && !isWireStruct(w);
}

/** The entries of a struct-like wire value, or undefined when it is not one. */
export function structEntries(w: unknown): Array<[string, unknown]> | undefined {
  if (isWireStruct(w)) return [...(w as Map<string, unknown>).entries()];
  if (isObjectStruct(w)) return Object.keys(w).map((k) => [k, w[k]]);
  return undefined;
}

/**
 * Whether every key of an object struct is one of `fields` as spelled: then a field's value is
 * its own property, and no view of the struct (a Map of its entries, a case-folded index) is
 * needed. What this service writes to its log, and what most clients send, is such a struct.
 */
function keysAllExact(w: Record<string, unknown>, fields: ReadonlySet<string>): boolean {
  for (const k in w) if (w[k] === undefined || !fields.has(k)) return false;
  return true;
}

/** Value of `key` in a struct, matched exactly first and then ignoring case (last one wins). */
export function lookupKey(w: unknown, key: string): unknown {
  const entries = structEntries(w);
  if (!entries) return undefined;
  let found: unknown;
  const lower = key.toLowerCase();
  for (const [k, v] of entries) {
    if (k === key) return v;
    if (k.toLowerCase() === lower) found = v;
  }
  return found;
}

/**
 * Case-insensitive view of a struct: exact spelling wins, else the last key equal ignoring case.
 * The case-folded index is built only when a lookup can need it: a struct whose keys are all
 * exactly its record's field names (what this service writes and most clients send) has none,
 * and a record's decode of the log makes one view per struct.
 */
class StructView {
  private readonly exact = new Map<string, unknown>();
  private folded?: Map<string, unknown>;
  private readonly needsFolding: boolean;
  constructor(
    private readonly entries: Array<[string, unknown]>,
    /** The record's field names, when no two of them are equal ignoring case (else undefined). */
    exactFields: ReadonlySet<string> | undefined,
  ) {
    let allExact = exactFields !== undefined;
    for (const [k, v] of entries) {
      if (v === undefined) continue; // only JS callers can produce it; it means "absent"
      this.exact.set(k, v);
      if (allExact && !exactFields!.has(k)) allExact = false;
    }
    this.needsFolding = !allExact;
  }
  get(key: string): unknown {
    const v = this.exact.get(key);
    if (v !== undefined || !this.needsFolding) return v;
    if (!this.folded) {
      this.folded = new Map();
      for (const [k, x] of this.entries) if (x !== undefined) this.folded.set(k.toLowerCase(), x);
    }
    return this.folded.get(key.toLowerCase());
  }
}

// ---------------------------------------------------------------------------------------------
// Scalars

const INT_SHAPE = 'int';
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function decodeInteger(w: unknown, path: string, min: number, max: number, shape: string): number {
  if (w instanceof RpcDouble) w = w.value;
  if (typeof w === 'bigint') {
    if (w < BigInt(min) || w > BigInt(max)) throw outOfRange(path);
    return Number(w);
  }
  if (typeof w === 'number') {
    if (!Number.isInteger(w)) throw typeError(path, shape, w);
    if (w < min || w > max) throw outOfRange(path);
    return w === 0 ? 0 : w; // no -0
  }
  if (typeof w === 'string') {
    const s = w.trim();
    // XML-RPC untagged values and some clients send integers as decimal text (§3).
    if (/^[+-]?\d+$/.test(s)) {
      const b = BigInt(s);
      if (b < BigInt(min) || b > BigInt(max)) throw outOfRange(path);
      return Number(b);
    }
    if (/^[+-]?\d+\.0*$/.test(s)) return decodeInteger(Number(s), path, min, max, shape);
  }
  throw typeError(path, shape, w);
}

const FLOAT_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export const string: Type<string> = {
  kind: 'string',
  name: 'string',
  decode(w, path) {
    if (typeof w === 'string') return w;
    throw typeError(path, 'string', w);
  },
  encode: (v) => v,
};

/** A JavaScript-safe integer (|n| <= 2^53-1). */
export const int: Type<number> = {
  kind: 'int',
  name: 'int',
  decode: (w, path) => decodeInteger(w, path, -MAX_SAFE, MAX_SAFE, INT_SHAPE),
  encode: (v) => v,
};

export const int32: Type<number> = {
  kind: 'int32',
  name: 'int32',
  decode: (w, path) => decodeInteger(w, path, INT32_MIN, INT32_MAX, 'int32'),
  encode: (v) => v,
};

export const float: Type<number> = {
  kind: 'float',
  name: 'float',
  decode(w, path) {
    const n =
      w instanceof RpcDouble
        ? w.value
        : typeof w === 'number'
          ? w
          : typeof w === 'bigint'
            ? Number(w)
            : typeof w === 'string' && FLOAT_TEXT.test(w.trim())
              ? Number(w.trim())
              : undefined;
    // NaN and ±Infinity (`1e999`, `<double>1e999</double>`): no wire format can carry them back.
    if (n === undefined || !Number.isFinite(n)) throw typeError(path, 'float', w);
    return n;
  },
  // RpcDouble so that XML-RPC emits <double> even for integral values.
  encode: (v) => new RpcDouble(v),
};

export const bool: Type<boolean> = {
  kind: 'bool',
  name: 'bool',
  decode(w, path) {
    if (typeof w === 'boolean') return w;
    // XML-RPC <boolean> text and untagged values arrive as text; some clients send 0/1.
    if (typeof w === 'string') {
      const s = w.trim().toLowerCase();
      if (s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
    }
    if (w === 1) return true;
    if (w === 0) return false;
    throw typeError(path, 'bool', w);
  },
  encode: (v) => v,
};

export const unit: Type<null> = {
  kind: 'unit',
  name: 'unit',
  decode(w, path) {
    if (w === null || w === undefined || (Array.isArray(w) && w.length === 0)) return null;
    throw typeError(path, 'unit', w);
  },
  encode: () => null,
};

/** Converts any JS value into WireOut: objects become Maps (key order kept), undefined becomes null. */
export function toWireOut(v: unknown): WireOut {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof RpcDouble) return v;
  if (Array.isArray(v)) return v.map(toWireOut);
  if (v instanceof Map) {
    const m: WireStruct = new Map();
    for (const [k, x] of v as Map<unknown, unknown>) m.set(String(k), toWireOut(x));
    return m;
  }
  if (typeof v === 'object') {
    const m: WireStruct = new Map();
    for (const k of Object.keys(v)) m.set(k, toWireOut((v as Record<string, unknown>)[k]));
    return m;
  }
  return String(v);
}

/** Any wire value, kept verbatim (e.g. a task's result). */
export const any: Type<unknown> = {
  kind: 'any',
  name: 'any',
  decode: (w) => w,
  encode: (v) => toWireOut(v),
};

// ---------------------------------------------------------------------------------------------
// Options

/** Whether `[x]`/`[]` can be read as an option wrapper without ambiguity (§3: true of every §4 type). */
function arrayWrapperIsUnambiguous(inner: AnyType): boolean {
  return inner.kind !== 'any' && inner.kind !== 'list' && inner.kind !== 'option';
}

export function option<T>(inner: Type<T>): OptionType<T> {
  return {
    kind: 'option',
    name: `${inner.name} option`,
    inner,
    // Option outside a field: [] / [x]; null also means None; a bare non-array value is read as Some.
    decode(w, path) {
      if (w === null || w === undefined) return undefined;
      if (Array.isArray(w)) {
        if (w.length === 0) return undefined;
        if (w.length === 1) return inner.decode(w[0], path);
        throw typeError(path, `${inner.name} option ([] or [x])`, w);
      }
      if (inner.kind === 'any') throw typeError(path, `${inner.name} option ([] or [x])`, w);
      return inner.decode(w, path);
    },
    encode: (v, d) => (v === undefined ? [] : [inner.encode(v, d)]),
  };
}

/**
 * Decodes a value found in a record field or a named argument. Options there are bare:
 * `null`/`[]` = None, `[x]` = Some x, `x` = Some x. Other types decode as usual.
 * (An absent key is the caller's business: see `defaultOf`.)
 */
export function decodeField<T>(t: Type<T>, w: unknown, path: string): T {
  if (t.kind !== 'option') return t.decode(w, path);
  const inner = (t as unknown as OptionType<unknown>).inner;
  if (w === null || w === undefined) return undefined as T;
  if (Array.isArray(w) && arrayWrapperIsUnambiguous(inner)) {
    if (w.length === 0) return undefined as T;
    if (w.length === 1) return inner.decode(w[0], path) as T;
  }
  return inner.decode(w, path) as T;
}

/** Encodes a field/named-argument value: `undefined` means "leave the key out" (an option's None). */
export function encodeField<T>(t: Type<T>, v: T, d: Dialect): WireOut | undefined {
  if (t.kind !== 'option') return t.encode(v, d);
  if (v === undefined) return undefined;
  return (t as unknown as OptionType<unknown>).inner.encode(v, d);
}

/**
 * The value an absent argument takes (§2.5): unit → null, option → None (undefined),
 * bool → false, dict → empty. Undefined result: the argument is required.
 */
export function defaultOf<T>(t: Type<T>): { readonly value: T } | undefined {
  switch (t.kind) {
    case 'unit':
      return { value: null as T };
    case 'option':
      return { value: undefined as T };
    case 'bool':
      return { value: false as T };
    case 'dict':
      return { value: [] as T };
    default:
      return undefined;
  }
}

export function hasDefault(t: AnyType): boolean {
  return defaultOf(t) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Containers

export function list<T>(element: Type<T>): ListType<T> {
  return {
    kind: 'list',
    name: `${element.name} list`,
    element,
    decode(w, path) {
      if (!Array.isArray(w)) throw typeError(path, `${element.name} list`, w);
      return w.map((x, i) => element.decode(x, joinPath(path, i)));
    },
    encode: (v, d) => v.map((x) => element.encode(x, d)),
  };
}

export function dict<T>(value: Type<T>): DictType<T> {
  return {
    kind: 'dict',
    name: `dict<${value.name}>`,
    value,
    decode(w, path) {
      // An object holds each key once: its keys, in order, are the dict's (no Map to dedupe them).
      if (isObjectStruct(w)) return Object.keys(w).map((k): [string, T] => [k, value.decode(w[k], wirePath(path, k))]);
      const entries = structEntries(w);
      if (!entries) throw typeError(path, `dict<${value.name}>`, w);
      // Duplicate keys: the last value wins, at the position of the first occurrence.
      const out = new Map<string, T>();
      for (const [k, x] of entries) out.set(k, value.decode(x, wirePath(path, k))) // the client's keys: kept single-line and short;
      return [...out.entries()];
    },
    encode(v, d) {
      const m: WireStruct = new Map();
      for (const [k, x] of v) m.set(k, value.encode(x, d));
      return m;
    },
  };
}

type TupleOf<A extends readonly AnyType[]> = { -readonly [I in keyof A]: Infer<A[I]> };

export function tuple<const A extends readonly AnyType[]>(...elements: A): TupleType<TupleOf<A> & unknown[]> {
  const name = `(${elements.map((e) => e.name).join(' * ')})`;
  return {
    kind: 'tuple',
    name,
    elements,
    decode(w, path) {
      if (!Array.isArray(w) || w.length > elements.length) throw typeError(path, name, w);
      // Missing trailing elements are read as absent: fine for options and unit, an error otherwise.
      return elements.map((e, i) => {
        if (i >= w.length && e.kind !== 'option' && e.kind !== 'unit') throw typeError(path, name, w);
        return e.decode(w[i], joinPath(path, i));
      }) as TupleOf<A> & unknown[];
    },
    encode: (v, d) => elements.map((e, i) => e.encode(v[i], d)),
  };
}

// ---------------------------------------------------------------------------------------------
// Records

export interface FieldSpec<D extends AnyType> {
  readonly type: D;
  /** Value taken when the key is absent. Options default to None without saying so. */
  readonly default?: Infer<D>;
  /** Dialects whose encoder emits the field (default: all). */
  readonly dialects?: readonly Dialect[];
}

/** A record field with a default and/or restricted to some dialects. */
export function field<D extends AnyType>(type: D, opts: { default?: Infer<D>; dialects?: readonly Dialect[] } = {}): FieldSpec<D> {
  return { type, ...opts };
}

export type Fields = Record<string, AnyType | FieldSpec<AnyType>>;
type DescOf<F> = F extends FieldSpec<infer D> ? D : F extends AnyType ? F : never;
type OptionalKeys<F extends Fields> = { [K in keyof F]: DescOf<F[K]> extends OptionType<any> ? K : never }[keyof F];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type RecordOf<F extends Fields> = Simplify<
  { [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<DescOf<F[K]>> } & {
    [K in OptionalKeys<F>]?: Exclude<Infer<DescOf<F[K]>>, undefined>;
  }
>;

function cloneValue<T>(v: T): T {
  return v === null || typeof v !== 'object' ? v : structuredClone(v);
}

export function record<const F extends Fields>(name: string, fields: F): RecordType<RecordOf<F>> {
  const infos: FieldInfo[] = Object.keys(fields).map((key) => {
    const f = fields[key]!;
    const spec: FieldSpec<AnyType> = 'kind' in f ? { type: f } : f;
    const has = 'default' in spec;
    const def = spec.default;
    return {
      key,
      type: spec.type,
      hasDefault: has,
      defaultValue: () => cloneValue(def),
      ...(spec.dialects ? { dialects: spec.dialects } : {}),
    };
  });
  const folds = new Set(infos.map((f) => f.key.toLowerCase()));
  const exactFields = folds.size === infos.length ? new Set(infos.map((f) => f.key)) : undefined;
  const decodeRecordField = (f: FieldInfo, raw: unknown, path: string): unknown => {
    if (raw !== undefined) return decodeField(f.type, raw, joinPath(path, f.key));
    if (f.hasDefault) return f.defaultValue();
    if (f.type.kind === 'option') return undefined;
    if (f.type.kind === 'unit') return null;
    throw missingKey(f.key, name);
  };
  /**
   * A struct whose keys are all fields as spelled, decoded into a copy of itself: a spread copies
   * its shape at once, where adding some thirty keys one by one to an empty object cost most of a
   * configuration's decode (measured). Undefined when a value decodes to nothing (a None sent as
   * `null`): its key must then be absent, and the caller builds the record key by key.
   */
  const decodeExact = (w: Record<string, unknown>, path: string): Record<string, unknown> | undefined => {
    const out: Record<string, unknown> = { ...w };
    for (const f of infos) {
      // Own keys only: a field named like an Object.prototype member is absent unless sent.
      const sent = Object.hasOwn(w, f.key);
      const v = decodeRecordField(f, sent ? w[f.key] : undefined, path);
      if (v !== undefined) out[f.key] = v;
      else if (sent) return undefined;
    }
    return out;
  };
  return {
    kind: 'record',
    name,
    fields: infos,
    decode(w, path) {
      const decoded = exactFields && isObjectStruct(w) && keysAllExact(w, exactFields) ? decodeExact(w, path) : undefined;
      if (decoded) return decoded as RecordOf<F>;
      const entries = structEntries(w);
      if (!entries) throw typeError(path, name, w);
      const view = new StructView(entries, exactFields);
      const out: Record<string, unknown> = {};
      for (const f of infos) {
        const v = decodeRecordField(f, view.get(f.key), path);
        if (v !== undefined) out[f.key] = v;
      }
      return out as RecordOf<F>;
    },
    encode(v, d) {
      const m: WireStruct = new Map();
      const o = v as Record<string, unknown>;
      for (const f of infos) {
        if (f.dialects && !f.dialects.includes(d)) continue;
        let x = o[f.key];
        if (x === undefined && f.type.kind !== 'option' && f.hasDefault) x = f.defaultValue();
        const e = encodeField(f.type, x, d);
        if (e !== undefined) m.set(f.key, e);
      }
      return m;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Variants

export type Ctors = Record<string, AnyType | null>;
export type VariantOf<C extends Ctors> = {
  [K in keyof C & string]: C[K] extends Type<infer A> ? [K, A] : K;
}[keyof C & string];

/** Whether an argument of a nullary constructor is one of the seed "unit" forms (absent, null, []). */
function isUnitArgument(arg: unknown): boolean {
  return arg === undefined || arg === null || (Array.isArray(arg) && arg.length === 0);
}

export function variant<const C extends Ctors>(
  name: string,
  ctors: C,
  opts: { default?: VariantOf<C> } = {},
): VariantType<VariantOf<C>> {
  const table = new Map<string, AnyType | null>(Object.entries(ctors));
  const folded = new Map<string, string>();
  for (const tag of table.keys()) folded.set(tag.toLowerCase(), tag);
  const canonicalTag = (tag: string) => (table.has(tag) ? tag : folded.get(tag.toLowerCase()));
  const hasFallback = 'default' in opts;
  const t: VariantType<VariantOf<C>> = {
    kind: 'variant',
    name,
    ctors: table,
    canonicalTag,
    ...(hasFallback ? { fallback: opts.default } : {}),
    decode(w, path) {
      let tag: string;
      let arg: unknown;
      if (typeof w === 'string') tag = w;
      else if (Array.isArray(w) && w.length >= 1 && typeof w[0] === 'string') {
        tag = w[0];
        // [tag, a, b] is read as [tag, [a, b]] (a flattened tuple argument).
        arg = w.length === 1 ? undefined : w.length === 2 ? w[1] : w.slice(1);
      } else throw typeError(path, name, w);
      const canon = canonicalTag(tag);
      if (canon === undefined) {
        if (hasFallback) return cloneValue(opts.default) as VariantOf<C>;
        throw typeError(path, `${name} (one of ${[...table.keys()].join(', ')})`, w);
      }
      const argType = table.get(canon)!;
      if (argType === null) {
        if (!isUnitArgument(arg)) throw typeError(path, `${canon} without argument`, w);
        return canon as VariantOf<C>;
      }
      if (arg === undefined) throw typeError(path, `[${canon}, ${argType.name}]`, w);
      return [canon, argType.decode(arg, joinPath(path, canon))] as VariantOf<C>;
    },
    encode(v, d) {
      if (typeof v === 'string') return v;
      const [tag, arg] = v as [string, unknown];
      const argType = table.get(tag);
      if (!argType) throw Errors.internal(`cannot encode ${name}: unknown constructor ${tag}`);
      return [tag, argType.encode(arg, d)];
    },
  };
  return t;
}

// ---------------------------------------------------------------------------------------------
// Adapting a descriptor (alternative accepted shapes, dialect-specific encodings, validation)

export interface Adaptation<T> {
  /** Rewrites an alternative accepted wire shape into the descriptor's own shape before decoding. */
  readonly accept?: (w: unknown, path: string) => unknown;
  /** Checks or normalises the decoded value (e.g. ranges, non-empty ids). */
  readonly check?: (v: T, path: string) => T;
  /** Replaces the encoder for some dialects (e.g. the seed shapes of §4.12). */
  readonly encodeIn?: Partial<Record<Dialect, (v: T) => WireOut>>;
  readonly name?: string;
}

/**
 * A descriptor like `base` (same kind and introspection fields) whose decode and encode are
 * adapted. Combinators are closures without `this`, so spreading keeps them working.
 */
export function adapt<D extends AnyType>(base: D, a: Adaptation<Infer<D>>): D {
  return {
    ...base,
    ...(a.name ? { name: a.name } : {}),
    decode(w: unknown, path: string) {
      const v = base.decode(a.accept ? a.accept(w, path) : w, path);
      return a.check ? a.check(v, path) : v;
    },
    encode(v: Infer<D>, d: Dialect) {
      const special = a.encodeIn?.[d];
      return special ? special(v) : base.encode(v, d);
    },
  } as D;
}

/** A non-empty string: ids and device names (`["Internal_error", "invalid id"]` when empty). */
export const id: Type<string> = adapt(string, {
  name: 'id',
  check(v) {
    if (v === '') throw invalidId();
    return v;
  },
});
