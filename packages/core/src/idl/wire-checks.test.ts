import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IllFormedStringError,
  MAX_WIRE_NESTING,
  NestingLimitError,
  findIllFormedString,
  jsonMayHoldIllFormedString,
  jsonNestingExceeds,
  parseUntrustedJson,
} from './wire-checks.js';

/** Any UTF-16 code unit, so that lone surrogates come up often. */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const anyString = fc.string({ unit: anyUnit, maxLength: 8 });

/** Nesting depth of a parsed JSON value (arrays and objects count one level each). */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (typeof v === 'object' && v !== null) return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('jsonNestingExceeds', () => {
  it('is exact at the limit, for arrays and objects', () => {
    for (const n of [1, 2, MAX_WIRE_NESTING - 1, MAX_WIRE_NESTING]) {
      expect(jsonNestingExceeds('['.repeat(n) + ']'.repeat(n))).toBe(false);
      expect(jsonNestingExceeds('{"a":'.repeat(n) + '0' + '}'.repeat(n))).toBe(false);
    }
    const over = MAX_WIRE_NESTING + 1;
    expect(jsonNestingExceeds('['.repeat(over) + ']'.repeat(over))).toBe(true);
    expect(jsonNestingExceeds('{"a":'.repeat(over) + '0' + '}'.repeat(over))).toBe(true);
    expect(jsonNestingExceeds('[[[]]]', 2)).toBe(true);
    expect(jsonNestingExceeds('[[],[],[[]]]', 3)).toBe(false);
  });

  it('skips strings, escaped quotes and backslashes included', () => {
    expect(jsonNestingExceeds(JSON.stringify(['['.repeat(500)]), 1)).toBe(false);
    expect(jsonNestingExceeds(JSON.stringify(['\\"[[[', '\\', '"']), 1)).toBe(false);
    expect(jsonNestingExceeds(JSON.stringify([['\\'], ['\\\\"']]), 2)).toBe(false);
    expect(jsonNestingExceeds(JSON.stringify([['\\'], [['\\\\"']]]), 2)).toBe(true);
  });

  it('handles a 16 MiB body quickly and without recursion', () => {
    const half = 8 * 1024 * 1024;
    const started = Date.now();
    expect(jsonNestingExceeds('['.repeat(half) + ']'.repeat(half))).toBe(true);
    expect(jsonNestingExceeds(`["${'x'.repeat(2 * half - 4)}"]`)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('property: agrees with the depth of the parsed value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 7 }), (v, max) => {
        const text = JSON.stringify(v);
        expect(jsonNestingExceeds(text, max)).toBe(depthOf(JSON.parse(text)) > max);
      }),
      { numRuns: 500 },
    );
  });
});

describe('findIllFormedString', () => {
  it('finds lone surrogates in values and keys, with the path in the IDL style', () => {
    expect(findIllFormedString({ vm: { name: 'ok', xsdata: { a: 'x\ud800' } } })).toBe('vm.xsdata.a');
    expect(findIllFormedString({ vm: { id: ['v', '\udc00'] } })).toBe('vm.id[1]');
    expect(findIllFormedString(['\ud83d'], 'params')).toBe('params[0]');
    expect(findIllFormedString({ ['bad\ud800']: 1 })).toBe('bad\\uD800');
    expect(findIllFormedString(new Map([['k', ['\udfff']]]), 'm')).toBe('m.k[0]');
    expect(findIllFormedString('\ud800')).toBe('');
    // Pairs, NUL and controls are well-formed Unicode.
    expect(findIllFormedString({ a: '\ud83d\ude00', b: '\u0000\n', c: [1, null, true, { d: '\uffff' }] })).toBeUndefined();
  });

  it('renders keys in paths on one line, bounded', () => {
    const path = findIllFormedString({ ['a\nb'.repeat(100)]: '\ud800' })!;
    expect(path).not.toContain('\n');
    expect(path.length).toBeLessThan(80);
    expect(path.isWellFormed()).toBe(true);
  });

  it('is iterative: a 100,000-deep value does not overflow the stack', () => {
    let v: unknown = '\ud800';
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(findIllFormedString(v)).toBe('[0]'.repeat(100_000));
  });

  it('property: finds something exactly when some string or key is not well-formed', () => {
    const tree = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, anyString, fc.integer(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(anyString, tie('node'), { maxKeys: 3 })),
    })).node;
    const strings = (v: unknown): string[] =>
      typeof v === 'string' ? [v] : Array.isArray(v) ? v.flatMap(strings) : typeof v === 'object' && v !== null ? Object.entries(v).flatMap(([k, x]) => [k, ...strings(x)]) : [];
    fc.assert(
      fc.property(tree, (v) => {
        expect(findIllFormedString(v) !== undefined).toBe(!strings(v).every((s) => s.isWellFormed()));
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseUntrustedJson', () => {
  it('parses what is fine', () => {
    expect(parseUntrustedJson('{"a":["\\ud83d\\ude00","\\u0000"]}')).toEqual({ a: ['\u{1F600}', '\u0000'] });
  });

  it('refuses escaped lone surrogates with a typed §6.3-style error', () => {
    const e = errorOf(() => parseUntrustedJson('{"vm":{"name":"\\ud800"}}', 'metadata'));
    expect(e).toBeInstanceOf(IllFormedStringError);
    expect(e).toMatchObject({ name: 'IllFormedStringError', code: 'ILL_FORMED_STRING', path: 'metadata.vm.name' });
    expect((e as Error).message).toBe('Type error at metadata.vm.name: expected a well-formed Unicode string');
  });

  it('refuses deep nesting before parsing, with the limit in the message', () => {
    const e = errorOf(() => parseUntrustedJson('['.repeat(1_000_000) + ']'.repeat(1_000_000)));
    expect(e).toBeInstanceOf(NestingLimitError);
    expect(e).toMatchObject({ name: 'NestingLimitError', code: 'NESTING_LIMIT', limit: MAX_WIRE_NESTING });
    expect((e as Error).message).toBe(`request nesting exceeds ${MAX_WIRE_NESTING} levels`);
  });

  it('leaves syntax errors to JSON.parse', () => {
    expect(errorOf(() => parseUntrustedJson('{"a":'))).toBeInstanceOf(SyntaxError);
  });

  it('jsonMayHoldIllFormedString: only surrogate escapes or raw lone surrogates trigger the walk', () => {
    expect(jsonMayHoldIllFormedString('{"a":"\\u00e9 \\ud7ff \\ue000"}')).toBe(false);
    expect(jsonMayHoldIllFormedString('{"a":"\\uD800"}')).toBe(true);
    expect(jsonMayHoldIllFormedString('{"a":"\\udfff"}')).toBe(true);
    expect(jsonMayHoldIllFormedString('{"a":"\ud800"}')).toBe(true);
  });
});
