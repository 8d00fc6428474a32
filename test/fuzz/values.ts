/**
 * Hostile values for the fuzz suite: strings with lone surrogates, NUL and odd characters; numbers
 * JSON cannot hold (NaN, ±Infinity, 2^63) written the way a hostile client would; wrong types and
 * shapes; and, for every IDL type, values that are mostly right with something wrong inside, so
 * that requests get past the first checks and into the handlers.
 */
import fc from 'fast-check';
import type { AnyType, FieldInfo, VariantType } from '@xenops/core';

/**
 * A number written as text: what a hostile client sends where JSON or JavaScript cannot hold the
 * value (`1e999`, `NaN`, `9223372036854775808`), in each codec's spelling.
 */
export class RawNumber {
  constructor(
    readonly json: string,
    readonly xml: string,
  ) {}
}

/** A request value: JSON-like, plus numbers as text. Structs are plain objects (own keys only). */
export type FVal = string | number | boolean | null | RawNumber | FVal[] | { [key: string]: FVal };

export const RAW_NUMBERS = {
  infinity: new RawNumber('1e999', '<double>1e999</double>'),
  negInfinity: new RawNumber('-1e999', '<double>-inf</double>'),
  /** Not JSON at all: the whole body is unparseable. */
  nan: new RawNumber('NaN', '<double>NaN</double>'),
  two63: new RawNumber('9223372036854775808', '<i8>9223372036854775808</i8>'),
  minusTwo63Minus1: new RawNumber('-9223372036854775809', '<i8>-9223372036854775809</i8>'),
  negZero: new RawNumber('-0', '<int>-0</int>'),
  longDigits: new RawNumber(`1${'0'.repeat(400)}`, `<i8>1${'0'.repeat(400)}</i8>`),
  integralFloat: new RawNumber('2.0', '<double>2.0</double>'),
  hexText: new RawNumber('"0x10"', '<int>0x10</int>'),
} as const;

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings as callers send them, hostile ones often. Bounded length (huge ones: {@link hugeString}). */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
  { weight: 3, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 8 }) },
  { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 4 }), loneSurrogate, fc.string({ maxLength: 4 })).map(([a, s, b]) => `${a}${s}${b}`) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      '\u0000',
      'a\u0000b',
      '\ud800',
      '\udfff\ud800',
      '\ud83d\ude00',
      '\uffff',
      '\ufffe',
      '\u0085\u2028',
      '%',
      '%2e',
      '.',
      '>',
      '*',
      '../..',
      'a b',
      '\r\n',
      '<&>"\'',
      '\\',
      ']]>',
      'null',
      'NaN',
      'Infinity',
      '-0',
      '1e999',
      '9223372036854775808',
      ' 42 ',
      '0x10',
      'true',
      '__proto__',
      'constructor',
    ),
  },
);

/** Odd but well-formed strings (NUL, controls, astral characters, markup): what `valid` requests carry. */
export const oddString: fc.Arbitrary<string> = hostileString.filter((s) => s.isWellFormed());

/** A string of 64 KiB to 1 MiB of one character (hostile or not). */
export const hugeString: fc.Arbitrary<string> = fc
  .tuple(fc.oneof({ weight: 3, arbitrary: fc.constant(64 * 1024) }, { weight: 2, arbitrary: fc.constant(256 * 1024) }, { weight: 1, arbitrary: fc.constant(1024 * 1024) }), fc.constantFrom('a', '\u00e9', '\ud83d\ude00', '\ud800', '\u0000', '[', '"'))
  .map(([n, c]) => c.repeat(Math.ceil(n / c.length)));

export const hostileNumber: fc.Arbitrary<FVal> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -3, max: 10 }) },
  { weight: 2, arbitrary: fc.integer() },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      -1,
      2 ** 31 - 1,
      2 ** 31,
      -(2 ** 31),
      -(2 ** 31) - 1,
      2 ** 32,
      2 ** 53 - 1,
      2 ** 53,
      2 ** 53 + 2,
      -(2 ** 53),
      2 ** 63,
      1e21,
      0.5,
      -0.5,
      1.5,
      1e-7,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
    ),
  },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 3, arbitrary: fc.constantFrom(...Object.values(RAW_NUMBERS)) },
);

/** `n` arrays nested in one another (around the nesting limit). */
const nested = (n: number): FVal => {
  let v: FVal = 'deep';
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

/** Any value of any type: what a caller sends when it gets the shape wrong. */
export const junk: fc.Arbitrary<FVal> = fc.letrec<{ junk: FVal }>((tie) => ({
  junk: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: hostileString },
    { weight: 3, arbitrary: hostileNumber },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom<FVal>([], {}, [[]], [null], ['Running'], [{}]) },
    { weight: 1, arbitrary: fc.integer({ min: 58, max: 66 }).map(nested) },
    { weight: 2, arbitrary: fc.array(tie('junk'), { maxLength: 3 }) },
    { weight: 2, arbitrary: fc.dictionary(hostileString, tie('junk'), { maxKeys: 3 }) },
  ),
})).junk;

/** Strings that name things that exist (VMs, devices, tasks), so that calls reach their handlers. */
export interface Pool {
  /** The fuzz's VMs: the most useful ids. */
  readonly vms: readonly string[];
  readonly strings: readonly string[];
}

/**
 * How wrong values are: `valid` keeps to the right shapes and plausible values (a little hostility
 * remains), so that calls get through decoding into the handlers and the log; `hostile` puts
 * something wrong almost everywhere.
 */
export type Mood = 'valid' | 'hostile';

const decimalText = fc.oneof(fc.integer({ min: -5, max: 100 }).map(String), fc.constantFrom('9007199254740993', '1.0', '1.5', ' 7 ', '+3', '-0', '1e3', ''));
const plausibleInt = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 2, arbitrary: fc.constantFrom(268435456, 536870912, 1073741824, 2147483648) });

/**
 * A `Local` disk is a path the simulator writes suspend images to (API.md §8.1): the fuzz keeps it
 * inside the service's scratch directory (the daemons run there), never absolute or with `..`.
 */
export function scratchPath(s: string): string {
  const safe = s.replace(/\//g, '_').replace(/^\.+/, '_');
  return safe === '' ? 'image' : safe;
}

const diskArbitrary = (path: fc.Arbitrary<string>): fc.Arbitrary<FVal> =>
  fc.oneof(path.map((p): FVal => ['Local', scratchPath(p)]), path.map((p): FVal => ['VDI', p]), path.map((p): FVal => ['local', scratchPath(p)]));

/** The descriptor's fields or constructors, when it has them (custom records such as Task.t do not). */
const fieldsOf = (t: AnyType): readonly FieldInfo[] | undefined => ('fields' in t ? (t as { fields: readonly FieldInfo[] }).fields : undefined);
const ctorsOf = (t: AnyType): VariantType<unknown>['ctors'] | undefined => ('ctors' in t ? (t as VariantType<unknown>).ctors : undefined);

/**
 * Values for an IDL type: of the right shape (every lenient form of §3 included) with hostile
 * leaves, and now and then anything at all in place of a subtree.
 */
export function valueOfType(t: AnyType, pool: Pool, mood: Mood, depth = 0): fc.Arbitrary<FVal> {
  const anything = mood === 'valid' ? 1 : 5;
  return fc.oneof({ weight: 30, arbitrary: shapeOfType(t, pool, mood, depth) }, { weight: anything, arbitrary: junk });
}

function shapeOfType(t: AnyType, pool: Pool, mood: Mood, depth: number): fc.Arbitrary<FVal> {
  if (depth > 8) return junk;
  const inner = (x: AnyType) => valueOfType(x, pool, mood, depth + 1);
  const valid = mood === 'valid';
  switch (t.kind) {
    case 'string':
      return fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...pool.vms) },
        { weight: 3, arbitrary: fc.constantFrom(...pool.strings) },
        { weight: valid ? 2 : 4, arbitrary: valid ? oddString : hostileString },
      );
    case 'int':
    case 'int32':
    case 'float':
      return fc.oneof({ weight: valid ? 8 : 1, arbitrary: plausibleInt }, { weight: 3, arbitrary: hostileNumber }, { weight: 1, arbitrary: decimalText });
    case 'bool':
      return fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: valid ? 1 : 3, arbitrary: fc.constantFrom<FVal>('true', '0', 'yes', 1, 0, 2) });
    case 'unit':
      return fc.constantFrom<FVal>(null, []);
    case 'option': {
      const x = inner((t as unknown as { inner: AnyType }).inner);
      return fc.oneof(fc.constantFrom<FVal>(null, []), x.map((v): FVal => [v]), x);
    }
    case 'list':
      return fc.array(inner((t as unknown as { element: AnyType }).element), { maxLength: 3 });
    case 'dict':
      return fc.dictionary(fc.oneof(fc.constantFrom(...pool.strings), hostileString), inner((t as unknown as { value: AnyType }).value), { maxKeys: 3 });
    case 'tuple':
      return fc.tuple(...(t as unknown as { elements: readonly AnyType[] }).elements.map(inner));
    case 'record': {
      const fields = fieldsOf(t);
      if (!fields) return fc.dictionary(hostileString, junk, { maxKeys: 4 });
      const model: Record<string, fc.Arbitrary<FVal>> = {};
      for (const f of fields) model[f.key] = inner(f.type);
      const all = fc.record(model) as fc.Arbitrary<Record<string, FVal>>;
      const some = fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, FVal>>;
      // Every field (the record decodes), or any subset; now and then a key the record does not know.
      return fc
        .tuple(fc.oneof({ weight: valid ? 6 : 1, arbitrary: all }, { weight: 1, arbitrary: some }), fc.dictionary(hostileString, junk, { maxKeys: valid ? 0 : 1 }))
        .map(([known, extra]) => ({ ...extra, ...known }));
    }
    case 'variant': {
      if (t.name === 'disk') return diskArbitrary(fc.oneof(fc.constantFrom(...pool.strings), valid ? oddString : hostileString));
      const ctors = ctorsOf(t);
      if (!ctors || ctors.size === 0) return junk;
      const forms = [...ctors].map(([tag, arg]) =>
        arg === null
          ? fc.constantFrom<FVal>(tag, tag.toLowerCase(), [tag], [tag, null])
          : inner(arg).chain((a) => fc.constantFrom<FVal>([tag, a], [tag.toUpperCase(), a], [tag])),
      );
      return fc.oneof(...forms, fc.constantFrom<FVal>('No_such_constructor', ['No_such_constructor', 1]));
    }
    case 'any':
      return junk;
  }
}
