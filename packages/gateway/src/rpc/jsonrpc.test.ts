import { describe, expect, it } from 'vitest';
import {
  encodeJsonRpcFailure,
  encodeJsonRpcInvalid,
  encodeJsonRpcSuccess,
  parseJsonRpc,
} from './jsonrpc.js';
import { RpcDouble, type WireOut } from './wire.js';

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
