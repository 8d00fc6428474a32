import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type JsonRpcCall,
  encodeJsonRpcFailure,
  encodeJsonRpcInvalid,
  encodeJsonRpcSuccess,
  parseJsonRpc,
} from './jsonrpc.js';
import { MAX_WIRE_NESTING, RpcDouble, type WireOut } from './wire.js';

describe('parseJsonRpc', () => {
  it('v1 and v2 single requests, id echo, notifications', () => {
    expect(parseJsonRpc('{"method":"query","params":[{"debug_info":"d"}],"id":7}')).toEqual({
      kind: 'single',
      entry: { kind: 'call', version: '1.0', id: 7, notification: false, method: 'query', params: { form: 'named', args: { debug_info: 'd' } } },
    });
    expect(parseJsonRpc('{"jsonrpc":"2.0","method":"query","params":{"dbg":"d"},"id":"a"}')).toEqual({
      kind: 'single',
      entry: { kind: 'call', version: '2.0', id: 'a', notification: false, method: 'query', params: { form: 'named', args: { dbg: 'd' } } },
    });
    expect(parseJsonRpc('{"jsonrpc":"2.0","method":"query"}')).toMatchObject({
      entry: { id: null, notification: true, params: { form: 'none' } },
    });
    expect(parseJsonRpc('{"jsonrpc":"1.0","method":"q","params":{"a":1},"id":null}')).toMatchObject({
      entry: { version: '1.0', id: null, notification: false, params: { form: 'malformed' } },
    });
  });

  it('whole-body errors', () => {
    expect(parseJsonRpc('{"method":')).toMatchObject({ kind: 'invalid', version: '1.0' });
    expect(parseJsonRpc('42')).toMatchObject({ kind: 'invalid', version: '1.0' });
    expect(parseJsonRpc('[]')).toMatchObject({ kind: 'invalid', version: '2.0', reason: 'empty batch' });
    expect(parseJsonRpc('{"id":1}')).toEqual({ kind: 'single', entry: { kind: 'invalid', version: '1.0', reason: "missing 'method'" } });
    expect(parseJsonRpc('{"jsonrpc":"2.0","method":3}')).toMatchObject({ entry: { kind: 'invalid', version: '2.0' } });
  });

  it('batches', () => {
    const m = parseJsonRpc('[{"jsonrpc":"2.0","method":"a","id":1}, 5, {"jsonrpc":"2.0","method":"b"}, {"id":2}]');
    expect(m.kind).toBe('batch');
    if (m.kind !== 'batch') return;
    expect(m.entries.map((e) => e.kind)).toEqual(['call', 'invalid', 'call', 'invalid']);
    expect(m.entries[1]!.version).toBe('2.0');
    expect(m.entries[3]!.version).toBe('2.0');
  });
});

describe('JSON-RPC reply encoders (§2.4)', () => {
  it('v1', () => {
    expect(encodeJsonRpcSuccess('1.0', 3, new Map<string, WireOut>([['b', 1], ['a', new RpcDouble(1)]]))).toBe(
      '{"result":{"b":1,"a":1},"error":null,"id":3}',
    );
    expect(encodeJsonRpcFailure('1.0', 8, ['Bad_power_state', ['Running', 'Halted']], -32000, 'x')).toBe(
      '{"result":null,"error":["Bad_power_state",["Running","Halted"]],"id":8}',
    );
  });

  it('v2', () => {
    expect(encodeJsonRpcSuccess('2.0', 'a', null)).toBe('{"jsonrpc":"2.0","result":null,"id":"a"}');
    expect(
      encodeJsonRpcFailure('2.0', { k: [1] } as never, ['Bad_power_state', ['Running', 'Halted']], -32000, 'Bad_power_state: VM is Running, expected Halted'),
    ).toBe(
      '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad_power_state: VM is Running, expected Halted","data":["Bad_power_state",["Running","Halted"]]},"id":{"k":[1]}}',
    );
  });

  it('invalid request', () => {
    expect(JSON.parse(encodeJsonRpcInvalid('1.0', 'x'))).toEqual({
      result: null,
      error: ['Internal_error', 'invalid JSON-RPC request: x'],
      id: null,
    });
    expect(JSON.parse(encodeJsonRpcInvalid('2.0', 'x'))).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'Internal_error: invalid JSON-RPC request: x', data: ['Internal_error', 'invalid JSON-RPC request: x'] },
      id: null,
    });
  });
});

/** A request whose params hold `n` arrays nested in one another (plus the envelope's 2 levels). */
const deepRequest = (n: number) => `{"method":"m","id":1,"params":${'['.repeat(n)}"x"${']'.repeat(n)}}`;

describe('parseJsonRpc: the nesting limit', () => {
  it('counts every array and object of the body, the envelope included', () => {
    expect(parseJsonRpc(deepRequest(MAX_WIRE_NESTING - 1)).kind).toBe('single');
    expect(parseJsonRpc(deepRequest(MAX_WIRE_NESTING))).toEqual({ kind: 'too-deep', message: `request nesting exceeds ${MAX_WIRE_NESTING} levels` });
    expect(parseJsonRpc('['.repeat(MAX_WIRE_NESTING) + ']'.repeat(MAX_WIRE_NESTING)).kind).toBe('batch');
    expect(parseJsonRpc('['.repeat(MAX_WIRE_NESTING + 1) + ']'.repeat(MAX_WIRE_NESTING + 1)).kind).toBe('too-deep');
  });

  it('refuses a 100,000-deep body without parsing it, and ignores brackets inside strings', () => {
    expect(parseJsonRpc('['.repeat(100_000) + ']'.repeat(100_000)).kind).toBe('too-deep');
    expect(parseJsonRpc('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)).kind).toBe('too-deep');
    const brackets = JSON.stringify('[{'.repeat(1000) + '\\"[' + '\\');
    expect(parseJsonRpc(`{"method":"m","params":[${brackets}],"id":1}`).kind).toBe('single');
  });
});

describe('parseJsonRpc: only well-formed Unicode gets through', () => {
  const MESSAGE = (path: string) => `Type error at ${path}: expected a well-formed Unicode string`;

  it('a lone surrogate in the params refuses the call with the path of the argument', () => {
    const refusalOf = (text: string) => {
      const m = parseJsonRpc(text);
      return m.kind === 'single' && m.entry.kind === 'call' ? m.entry.refusal?.message : `not a call: ${JSON.stringify(m)}`;
    };
    expect(refusalOf('{"method":"UPDATES.refresh_vm","id":2,"params":[{"debug_info":"\\ud800","id":"v"}]}')).toBe(MESSAGE('debug_info'));
    expect(refusalOf('{"method":"VBD.add","id":2,"params":[{"debug_info":"","vbd":{"id":["v","x\\udfff"]}}]}')).toBe(MESSAGE('vbd.id[1]'));
    expect(refusalOf('{"method":"VM.set_xsdata","id":2,"params":[{"id":"v","xsdata":{"k\\udc00":"ok"}}]}')).toBe(MESSAGE('xsdata.k\\uDC00'));
    expect(refusalOf('{"jsonrpc":"2.0","method":"m","id":2,"params":{"dbg":"a\\ud83d"}}')).toBe(MESSAGE('dbg'));
    expect(refusalOf('{"method":"DEBUG.trigger","id":2,"params":["dbg","set-cancel-trigger",["\\udbff\\udbff","1"]]}')).toBe(MESSAGE('params[2][0]'));
    // A pair is fine, escaped or not; so are NUL and other controls.
    expect(refusalOf('{"method":"m","id":2,"params":[{"a":"\\ud83d\\ude00 \ud83d\ude00 \\u0000"}]}')).toBeUndefined();
  });

  it('one in the method, the id, another member or a key makes the request invalid (id null)', () => {
    for (const [text, path] of [
      ['{"method":"VM.stat\\ud800","id":1,"params":[]}', 'method'],
      ['{"method":"VM.stat","id":"\\ud800","params":[]}', 'id'],
      ['{"method":"VM.stat","id":[{"a":"\\udc00"}],"params":[]}', 'id[0].a'],
      ['{"method":"VM.stat","id":1,"params":[],"extra":"\\udc00"}', 'extra'],
      ['{"method":"VM.stat","id":1,"params":[],"\\udc00":0}', '\\uDC00'],
    ] as const) {
      const m = parseJsonRpc(text);
      expect(m, text).toEqual({ kind: 'single', entry: { kind: 'invalid', version: '1.0', reason: MESSAGE(path) } });
    }
  });

  it('each batch entry is judged alone', () => {
    const m = parseJsonRpc('[{"jsonrpc":"2.0","method":"a","id":1,"params":["\\ud800"]},{"jsonrpc":"2.0","method":"b","id":"\\ud800"},{"jsonrpc":"2.0","method":"c","id":3}]');
    if (m.kind !== 'batch') throw new Error(`not a batch: ${m.kind}`);
    expect(m.entries[0]).toMatchObject({ kind: 'call', method: 'a', id: 1 });
    expect((m.entries[0] as JsonRpcCall).refusal?.message).toBe(MESSAGE('params[0]'));
    expect(m.entries[1]).toMatchObject({ kind: 'invalid', version: '2.0', reason: MESSAGE('id') });
    expect(m.entries[2]).toMatchObject({ kind: 'call', method: 'c' });
    expect((m.entries[2] as JsonRpcCall).refusal).toBeUndefined();
  });

  it('property: a request is refused exactly when one of its strings is not well-formed', () => {
    const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 6 });
    fc.assert(
      fc.property(fc.dictionary(anyString, fc.oneof(anyString, fc.array(anyString, { maxLength: 3 })), { maxKeys: 4 }), (args) => {
        const text = JSON.stringify({ method: 'm', id: 1, params: [args] });
        const m = parseJsonRpc(text);
        const strings = [...Object.keys(args), ...Object.values(args).flat()];
        const wellFormed = strings.every((s) => s.isWellFormed());
        expect(m.kind).toBe('single');
        if (m.kind !== 'single' || m.entry.kind !== 'call') return;
        expect(m.entry.refusal === undefined).toBe(wellFormed);
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeJsonRpcFailure: the v2 message is one line (fuzz finding)', () => {
  it('quotes of the caller (an Unimplemented method name with CR, a lone surrogate) are escaped in `message`, kept in `data`', () => {
    const error: WireOut = ['Unimplemented', 'x\r\ny\ud800'];
    const reply = JSON.parse(encodeJsonRpcFailure('2.0', 1, error, -32601, 'Unimplemented: x\r\ny\ud800')) as { error: { message: string; data: unknown } };
    expect(reply.error.message).toBe('Unimplemented: x\\u000D\\u000Ay\\uD800');
    expect(reply.error.data).toEqual(['Unimplemented', 'x\r\ny\ud800']);
    const long = JSON.parse(encodeJsonRpcFailure('2.0', 1, error, -32601, 'm'.repeat(5000))) as { error: { message: string } };
    expect(long.error.message.length).toBeLessThanOrEqual(1000);
  });
});
