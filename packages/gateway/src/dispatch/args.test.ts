import { bool, dict, float, int, option, string, unit, XenopsError } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import type { AnyArgDeclaration } from '@xenops/core';
import { ArgumentError, decodeArgs } from './args.js';

const specs: AnyArgDeclaration[] = [
  { key: 'id', type: string },
  { key: 'delay', type: option(float) },
  { key: 'force', type: bool },
  { key: 'xs', type: dict(string) },
  { key: 'unit', type: unit },
  { key: 'as_of', type: option(int), namedOnly: true },
];

const errorOf = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    if (e instanceof ArgumentError) return e.value;
    throw e;
  }
  throw new Error('no error');
};

describe('argument decoding (API.md §2.5)', () => {
  it('matches named keys ignoring case and gives absent arguments their defaults', () => {
    const args = Object.assign(Object.create(null), { DEBUG_INFO: 'ctx', Id: 'vm1', as_of: 7 });
    expect(decodeArgs({ form: 'named', args }, specs)).toMatchObject({
      dbg: 'ctx',
      values: { id: 'vm1', delay: undefined, force: false, xs: [], unit: null, as_of: 7 },
    });
  });

  it('prefers debug_info over dbg', () => {
    const args = Object.assign(Object.create(null), { dbg: 'a', debug_info: 'b', id: 'x' });
    expect(decodeArgs({ form: 'named', args }, specs).dbg).toBe('b');
  });

  it('reads positional arguments in table order, never as_of, and ignores extra ones', () => {
    const r = decodeArgs({ form: 'positional', dbg: 'ctx', args: ['vm1', [2.5], true, {}, null, 99, 100] }, specs);
    expect(r).toMatchObject({ dbg: 'ctx', values: { id: 'vm1', delay: 2.5, force: true, xs: [], unit: null, as_of: undefined } });
  });

  it('names a missing required argument', () => {
    expect(errorOf(() => decodeArgs({ form: 'none' }, specs))).toEqual(['Internal_error', "Expecting named argument 'id'"]);
  });

  it('reports malformed params and type errors as argument errors', () => {
    expect(errorOf(() => decodeArgs({ form: 'malformed' }, specs))).toEqual(['Internal_error', 'malformed params']);
    const args = Object.assign(Object.create(null), { id: 'x', force: 'maybe' });
    const e = errorOf(() => decodeArgs({ form: 'named', args }, specs)) as [string, string];
    expect(e[0]).toBe('Internal_error');
    expect(e[1]).toMatch(/^Type error at force: expected /);
    expect(new ArgumentError(['Internal_error', 'x'])).toBeInstanceOf(XenopsError);
  });
});

describe('the wire form of an argument', () => {
  it('is kept for the rules that need it: named by key ignoring case, positional by table order', () => {
    const named = decodeArgs({ form: 'named', args: Object.assign(Object.create(null), { ID: 'vm1', Force: true }) }, specs);
    expect(named.wire('id')).toBe('vm1');
    expect(named.wire('force')).toBe(true);
    expect(named.wire('delay')).toBeUndefined();
    const positional = decodeArgs({ form: 'positional', dbg: 'ctx', args: ['vm1', [2.5]] }, specs);
    expect(positional.wire('delay')).toEqual([2.5]);
    expect(positional.wire('as_of')).toBeUndefined();
  });
});
