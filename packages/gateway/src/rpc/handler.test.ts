import { describe, expect, it } from 'vitest';
import { bodyTooLargeReply, detectFormat, handleRpcBody, type Dispatcher, type RpcOutcome, type RpcRequest } from './handler.js';
import { encodeXmlRpcCall, parseXmlRpcResponse } from './xmlrpc.js';
import { wireInToOut } from './values.js';
import { MAX_WIRE_NESTING, RpcDouble } from './wire.js';

/** Answers `echo` with its named args' `x`, fails `fail`, throws on `boom`; records calls. */
function fakeDispatcher(log: RpcRequest[] = []): Dispatcher {
  return async (req) => {
    log.push(req);
    await new Promise((r) => setTimeout(r, 1));
    switch (req.method) {
      case 'echo': {
        const x = req.params.form === 'named' ? req.params.args['x'] : null;
        return { ok: true, value: wireInToOut(x ?? null) };
      }
      case 'twelve':
        return { ok: true, value: 12 };
      case 'float':
        return { ok: true, value: new RpcDouble(1) };
      case 'fail':
        return {
          ok: false,
          error: ['Bad_power_state', ['Running', 'Halted']],
          code: -32000,
          message: 'Bad_power_state: VM is Running, expected Halted',
        } satisfies RpcOutcome;
      case 'boom':
        throw new Error('kaput');
      default:
        return { ok: false, error: ['Unimplemented', req.method], code: -32601, message: `Unimplemented: ${req.method}` };
    }
  };
}

const run = (body: string, contentType?: string, log?: RpcRequest[]) =>
  handleRpcBody(Buffer.from(body), contentType, fakeDispatcher(log));
const squash = (s: string) => s.replace(/>\s+</g, '><').trim();

describe('detectFormat (§2.2)', () => {
  it('uses the first non-whitespace byte or Content-Type text/xml', () => {
    expect(detectFormat(Buffer.from(' \r\n\t<x/>'), undefined)).toBe('xml');
    expect(detectFormat(Buffer.from('\uFEFF<x/>'), undefined)).toBe('xml');
    expect(detectFormat(Buffer.from('{}'), 'application/json')).toBe('json');
    expect(detectFormat(Buffer.from('{}'), 'Text/XML; charset=utf-8')).toBe('xml');
    expect(detectFormat(Buffer.from(''), undefined)).toBe('json');
  });
});

describe('handleRpcBody: XML-RPC', () => {
  it('answers the §2.3 success envelope', async () => {
    const log: RpcRequest[] = [];
    const r = await run(encodeXmlRpcCall('twelve', [new Map([['debug_info', 'd']])]), undefined, log);
    expect(r.status).toBe(200);
    expect(r.headers['Content-Type']).toBe('text/xml');
    expect(r.body).toBe(
      squash(`<?xml version="1.0"?><methodResponse><params><param><value><struct>
<member><name>Status</name><value>Success</value></member>
<member><name>Value</name><value><int>12</int></value></member>
</struct></value></param></params></methodResponse>`),
    );
    expect(log).toEqual([{ method: 'twelve', params: { form: 'named', args: { debug_info: 'd' } }, format: 'xml' }]);
  });

  it('answers the §2.3 failure envelope', async () => {
    const r = await run(encodeXmlRpcCall('fail', ['dbg']));
    expect(r.status).toBe(200);
    expect(r.body).toBe(
      squash(`<?xml version="1.0"?><methodResponse><params><param><value><struct>
<member><name>Status</name><value>Failure</value></member>
<member><name>ErrorDescription</name><value><array><data>
<value>Bad_power_state</value>
<value><array><data><value>Running</value><value>Halted</value></data></array></value>
</data></array></value></member>
</struct></value></param></params></methodResponse>`),
    );
  });

  it('floats stay <double>', async () => {
    const r = await run(encodeXmlRpcCall('float', []));
    expect(r.body).toContain('<member><name>Value</name><value><double>1</double></value></member>');
  });

  it('faults -32700 only for unparseable bodies', async () => {
    for (const body of ['<methodCall><methodName>x</methodName>', '<methodResponse/>', '<!DOCTYPE a><a/>', '<methodCall/>']) {
      const r = await run(body);
      expect(r.status).toBe(200);
      const parsed = parseXmlRpcResponse(r.body);
      expect(parsed.kind).toBe('fault');
      if (parsed.kind === 'fault') {
        expect(parsed.code).toBe(-32700);
        expect(parsed.message).toMatch(/^parse error: /);
      }
    }
    const empty = parseXmlRpcResponse((await run('', 'text/xml')).body);
    expect(empty).toEqual({ kind: 'fault', code: -32700, message: 'parse error: unexpected end of input' });
    // text/xml wins over a JSON-looking body
    expect(parseXmlRpcResponse((await run('{"method":"echo"}', 'text/xml')).body).kind).toBe('fault');
  });

  it('dispatches non-XML-RPC params as malformed (a Failure, not a fault)', async () => {
    const log: RpcRequest[] = [];
    await run('<methodCall><methodName>echo</methodName><params><param><value><foo/></value></param></params></methodCall>', undefined, log);
    expect(log).toEqual([{ method: 'echo', params: { form: 'malformed' }, format: 'xml' }]);
  });

  it('a throwing dispatcher gives Internal_error', async () => {
    const r = parseXmlRpcResponse((await run(encodeXmlRpcCall('boom', []))).body);
    expect(r).toEqual({ kind: 'response', value: { Status: 'Failure', ErrorDescription: ['Internal_error', 'kaput'] } });
  });
});

describe('handleRpcBody: JSON-RPC', () => {
  const json = async (body: string, log?: RpcRequest[]) => {
    const r = await run(body, 'application/json', log);
    expect(r.headers['Content-Type']).toBe('application/json');
    expect(r.status).toBe(200);
    return r.body;
  };

  it('v1 success and failure, id echoed', async () => {
    const log: RpcRequest[] = [];
    expect(await json('{"method":"echo","params":[{"x":{"b":1,"a":[2]}}],"id":"abc"}', log)).toBe(
      '{"result":{"b":1,"a":[2]},"error":null,"id":"abc"}',
    );
    expect(log[0]).toMatchObject({ format: 'json', jsonVersion: '1.0' });
    expect(await json('{"method":"fail","params":[{}],"id":{"n":[1,2]}}')).toBe(
      '{"result":null,"error":["Bad_power_state",["Running","Halted"]],"id":{"n":[1,2]}}',
    );
    expect(await json('{"method":"twelve","params":[]}')).toBe('{"result":12,"error":null,"id":null}');
    expect(await json('{"method":"float","params":[],"id":0}')).toBe('{"result":1,"error":null,"id":0}');
  });

  it('v2 success and failure', async () => {
    const log: RpcRequest[] = [];
    expect(await json('{"jsonrpc":"2.0","method":"echo","params":{"x":"y"},"id":1}', log)).toBe(
      '{"jsonrpc":"2.0","result":"y","id":1}',
    );
    expect(log[0]).toMatchObject({ jsonVersion: '2.0', params: { form: 'named', args: { x: 'y' } } });
    expect(await json('{"jsonrpc":"2.0","method":"fail","id":2}')).toBe(
      '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad_power_state: VM is Running, expected Halted","data":["Bad_power_state",["Running","Halted"]]},"id":2}',
    );
    // a single request without id is still answered over HTTP
    expect(await json('{"jsonrpc":"2.0","method":"twelve"}')).toBe('{"jsonrpc":"2.0","result":12,"id":null}');
  });

  it('a throwing dispatcher gives Internal_error (-32000 in v2)', async () => {
    expect(await json('{"method":"boom","params":[],"id":1}')).toBe('{"result":null,"error":["Internal_error","kaput"],"id":1}');
    expect(JSON.parse(await json('{"jsonrpc":"2.0","method":"boom","id":1}'))).toEqual({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Internal_error: kaput', data: ['Internal_error', 'kaput'] },
      id: 1,
    });
  });

  it('invalid bodies: v1 Internal_error with id null, or v2 -32600 when declared', async () => {
    for (const body of ['{"method":', 'not json', '', '42', '"x"', 'null', '{"id":5,"params":[]}', '{"jsonrpc":"2.0",']) {
      const r = JSON.parse(await json(body));
      expect(r, body).toEqual({ result: null, error: ['Internal_error', expect.stringMatching(/^invalid JSON-RPC request: /)], id: null });
    }
    const v2 = JSON.parse(await json('{"jsonrpc":"2.0","id":5}'));
    expect(v2).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: expect.any(String), data: ['Internal_error', "invalid JSON-RPC request: missing 'method'"] },
      id: null,
    });
  });

  it('batches: in order, sequential, invalid entries, notifications skipped', async () => {
    const log: RpcRequest[] = [];
    const body = JSON.stringify([
      { jsonrpc: '2.0', method: 'echo', params: { x: 1 }, id: 'a' },
      7,
      { jsonrpc: '2.0', method: 'echo', params: { x: 2 } },
      { jsonrpc: '2.0', method: 'fail', id: 'c' },
      { jsonrpc: '2.0', id: 'd' },
      { method: 'twelve', params: [], id: 'e' },
    ]);
    const r = JSON.parse(await json(body, log));
    expect(log.map((l) => l.method)).toEqual(['echo', 'echo', 'fail', 'twelve']);
    expect(r).toEqual([
      { jsonrpc: '2.0', result: 1, id: 'a' },
      { jsonrpc: '2.0', error: { code: -32600, message: expect.any(String), data: ['Internal_error', expect.any(String)] }, id: null },
      { jsonrpc: '2.0', error: { code: -32000, message: expect.any(String), data: ['Bad_power_state', ['Running', 'Halted']] }, id: 'c' },
      { jsonrpc: '2.0', error: { code: -32600, message: expect.any(String), data: ['Internal_error', expect.any(String)] }, id: null },
      { result: 12, error: null, id: 'e' },
    ]);
  });

  it('batches run one after another', async () => {
    let active = 0;
    let maxActive = 0;
    const dispatch: Dispatcher = async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      return { ok: true, value: null };
    };
    const body = JSON.stringify([1, 2, 3].map((id) => ({ jsonrpc: '2.0', method: 'x', id })));
    await handleRpcBody(Buffer.from(body), undefined, dispatch);
    expect(maxActive).toBe(1);
  });

  it('empty batch: one error object; notifications only: 204', async () => {
    const empty = JSON.parse(await json('[]'));
    expect(Array.isArray(empty)).toBe(false);
    expect(empty).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
    const log: RpcRequest[] = [];
    const r = await run('[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"twelve"}]', undefined, log);
    expect(r).toEqual({ status: 204, headers: {}, body: '' });
    expect(log).toHaveLength(2);
  });
});

describe('bodyTooLargeReply (§2.1)', () => {
  it('JSON: v1 failure with id null, 413, close', () => {
    const r = bodyTooLargeReply(Buffer.from('  {"method":'), undefined);
    expect(r.status).toBe(413);
    expect(r.close).toBe(true);
    expect(r.headers['Content-Type']).toBe('application/json');
    expect(r.body).toBe('{"result":null,"error":["Internal_error","request body exceeds 16777216 bytes"],"id":null}');
  });

  it('XML: a Failure envelope', () => {
    const r = bodyTooLargeReply(Buffer.from('\n<?xml'), undefined);
    expect(r.headers['Content-Type']).toBe('text/xml');
    expect(parseXmlRpcResponse(r.body)).toEqual({
      kind: 'response',
      value: { Status: 'Failure', ErrorDescription: ['Internal_error', 'request body exceeds 16777216 bytes'] },
    });
    expect(bodyTooLargeReply(Buffer.alloc(0), 'text/xml').headers['Content-Type']).toBe('text/xml');
  });
});

describe('handleRpcBody: bad text and the nesting limit', () => {
  const json = async (body: string | Buffer, log?: RpcRequest[]) => {
    const r = await handleRpcBody(Buffer.isBuffer(body) ? body : Buffer.from(body), undefined, fakeDispatcher(log));
    expect(r.status).toBe(200);
    return JSON.parse(r.body) as Record<string, unknown>;
  };
  const xml = async (body: string | Buffer) => {
    const r = await handleRpcBody(Buffer.isBuffer(body) ? body : Buffer.from(body), undefined, fakeDispatcher());
    expect(r.status).toBe(200);
    expect(r.headers['Content-Type']).toBe('text/xml');
    return parseXmlRpcResponse(r.body);
  };
  const NOT_WELL_FORMED = (path: string) => `Type error at ${path}: expected a well-formed Unicode string`;

  it('a lone surrogate in the arguments is refused before dispatch: v1 Failure, v2 -32602, id echoed', async () => {
    const log: RpcRequest[] = [];
    expect(await json('{"method":"echo","id":7,"params":[{"x":"\\ud800"}]}', log)).toEqual({
      result: null,
      error: ['Internal_error', NOT_WELL_FORMED('x')],
      id: 7,
    });
    expect(await json('{"jsonrpc":"2.0","method":"echo","id":"a","params":{"x":["ok","\\udfff"]}}', log)).toEqual({
      jsonrpc: '2.0',
      error: { code: -32602, message: `Internal_error: ${NOT_WELL_FORMED('x[1]')}`, data: ['Internal_error', NOT_WELL_FORMED('x[1]')] },
      id: 'a',
    });
    expect(log).toEqual([]);
  });

  it('a lone surrogate in the method or id is an invalid request answered with id null', async () => {
    expect(await json('{"method":"echo\\ud800","id":7,"params":[]}')).toEqual({
      result: null,
      error: ['Internal_error', `invalid JSON-RPC request: ${NOT_WELL_FORMED('method')}`],
      id: null,
    });
    const v2 = await json('{"jsonrpc":"2.0","method":"echo","id":"\\ud800"}');
    expect(v2).toMatchObject({ error: { code: -32600 }, id: null });
  });

  it('bodies that are not UTF-8 are unparseable, never read with U+FFFD in place of the bad bytes', async () => {
    const bad = Buffer.concat([Buffer.from('{"method":"echo","id":1,"params":[{"x":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]}')]);
    const log: RpcRequest[] = [];
    expect(await json(bad, log)).toEqual({ result: null, error: ['Internal_error', 'invalid JSON-RPC request: body is not valid UTF-8'], id: null });
    expect(log).toEqual([]);
    const badXml = Buffer.concat([Buffer.from('<methodCall><methodName>echo</methodName><params><param><value>'), Buffer.from([0xff]), Buffer.from('</value></param></params></methodCall>')]);
    expect(await xml(badXml)).toEqual({ kind: 'fault', code: -32700, message: 'parse error: body is not valid UTF-8' });
  });

  it('XML character references to surrogates are parse errors (not well-formed XML, §2.3)', async () => {
    const r = await xml('<methodCall><methodName>echo</methodName><params><param><value>&#xD800;</value></param></params></methodCall>');
    expect(r).toMatchObject({ kind: 'fault', code: -32700 });
    expect((r as { message: string }).message).toMatch(/^parse error: /);
  });

  it('JSON nested past the limit: v1 Failure with id null and the limit message; at the limit it is dispatched', async () => {
    const deep = (n: number) => `{"method":"echo","id":1,"params":[{"x":${'['.repeat(n)}1${']'.repeat(n)}}]}`;
    const log: RpcRequest[] = [];
    expect(await json(deep(MAX_WIRE_NESTING - 3), log)).toMatchObject({ error: null, id: 1 });
    expect(await json(deep(MAX_WIRE_NESTING - 2), log)).toEqual({
      result: null,
      error: ['Internal_error', `request nesting exceeds ${MAX_WIRE_NESTING} levels`],
      id: null,
    });
    expect(await json('['.repeat(100_000) + ']'.repeat(100_000), log)).toMatchObject({ error: ['Internal_error', `request nesting exceeds ${MAX_WIRE_NESTING} levels`] });
    expect(log).toHaveLength(1);
  });

  it('XML nested past the limit: a Failure envelope with the limit message', async () => {
    const deep = (n: number) => `<value><array><data>`.repeat(n) + '<value>1</value>' + '</data></array></value>'.repeat(n);
    const body = (n: number) => encodeXmlRpcCall('echo', []).replace('<params></params>', `<params><param>${deep(n)}</param></params>`);
    expect(await xml(body(MAX_WIRE_NESTING))).toMatchObject({ kind: 'response', value: { Status: 'Success' } });
    expect(await xml(body(MAX_WIRE_NESTING + 1))).toEqual({
      kind: 'response',
      value: { Status: 'Failure', ErrorDescription: ['Internal_error', `request nesting exceeds ${MAX_WIRE_NESTING} levels`] },
    });
  });

  it('reply encoders never emit a lone surrogate: JSON escapes it, XML replaces it', async () => {
    const surrogateEcho: Dispatcher = async () => ({ ok: true, value: 'a\ud800b' });
    const j = await handleRpcBody(Buffer.from('{"method":"m","id":1,"params":[]}'), undefined, surrogateEcho);
    expect(j.body.isWellFormed()).toBe(true);
    expect(j.body).toContain('a\\ud800b');
    const x = await handleRpcBody(Buffer.from(encodeXmlRpcCall('m', [])), undefined, surrogateEcho);
    expect(x.body.isWellFormed()).toBe(true);
    expect(parseXmlRpcResponse(x.body)).toEqual({ kind: 'response', value: { Status: 'Success', Value: 'a\ufffdb' } });
  });
});
