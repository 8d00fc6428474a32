import { describe, expect, it } from 'vitest';
import { RpcDouble, struct, wireToJson, type WireOut } from './wire.js';

describe('wireToJson', () => {
  it('prints what JSON.stringify prints for ordinary trees', () => {
    const v: WireOut = struct([
      ['name', 'web "01"\n'],
      ['vcpus', 2],
      ['ratio', new RpcDouble(2)],
      ['bad', Number.NaN],
      ['flags', [true, false, null]],
      ['nested', struct([['b', 1], ['a', struct([])]])],
    ]);
    expect(wireToJson(v)).toBe('{"name":"web \\"01\\"\\n","vcpus":2,"ratio":2,"bad":null,"flags":[true,false,null],"nested":{"b":1,"a":{}}}');
  });

  it('keeps the order of integer-like keys, anywhere in the tree', () => {
    const v: WireOut = [struct([['x', struct([['10', 'a'], ['2', 'b'], ['z', 'c']])]])];
    expect(wireToJson(v)).toBe('[{"x":{"10":"a","2":"b","z":"c"}}]');
  });

  it('prints a __proto__ key as data', () => {
    const v: WireOut = struct([['__proto__', struct([['polluted', true]])], ['k', new RpcDouble(Number.POSITIVE_INFINITY)]]);
    const text = wireToJson(v);
    expect(text).toBe('{"__proto__":{"polluted":true},"k":null}');
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['__proto__', 'k']);
  });
});
