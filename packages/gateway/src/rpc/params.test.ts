import { describe, expect, it } from 'vitest';
import { classifyParams } from './params.js';
import { parseJsonWire, type WireIn } from './wire.js';

const j = (s: string) => parseJsonWire(s);

describe('classifyParams (§2.5)', () => {
  it('named: one-element array holding an object', () => {
    const p = classifyParams(j('[{"debug_info":"d","id":"vm1"}]'));
    expect(p).toEqual({ form: 'named', args: { debug_info: 'd', id: 'vm1' } });
    expect(classifyParams(j('[{}]'))).toEqual({ form: 'named', args: {} });
  });

  it('named: a bare object only when allowed (JSON-RPC v2)', () => {
    expect(classifyParams(j('{"dbg":"d"}'), { allowObject: true })).toEqual({ form: 'named', args: { dbg: 'd' } });
    expect(classifyParams(j('{"dbg":"d"}'))).toEqual({ form: 'malformed' });
  });

  it('positional: first element a string', () => {
    expect(classifyParams(j('["dbg","vm1",true]'))).toEqual({ form: 'positional', dbg: 'dbg', args: ['vm1', true] });
    expect(classifyParams(j('["dbg"]'))).toEqual({ form: 'positional', dbg: 'dbg', args: [] });
    expect(classifyParams(j('["dbg",{"a":1}]'))).toEqual({ form: 'positional', dbg: 'dbg', args: [{ a: 1 }] });
  });

  it('none: empty array, absent, null', () => {
    expect(classifyParams(j('[]'))).toEqual({ form: 'none' });
    expect(classifyParams(undefined)).toEqual({ form: 'none' });
    expect(classifyParams(null)).toEqual({ form: 'none' });
  });

  it('malformed: anything else', () => {
    for (const s of ['[1,2]', '[{},{}]', '[{"a":1},"x"]', '[null]', '[[1]]', '1', '"x"', 'true']) {
      expect(classifyParams(j(s) as WireIn, { allowObject: true }), s).toEqual({ form: 'malformed' });
    }
  });
});
