/**
 * Bad input over the wire (API.md §1.1, §2, §6.3; ARCHITECTURE.md invariant 5: bad input never
 * crashes a process, it gets a typed error and the next call works), HTTP rules, and access control.
 */
import { chmod, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawHttp } from '../support/raw-http.js';
import { httpRequest, RpcClient, S, X, type Codec } from '../support/rpc.js';
import { seedVm, vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, makeTempDir, runXenopsdToExit, spawnXenopsd, startNatsCluster } from '../support/xenopsd.js';
import { encodeXmlRpcCall, parseXmlRpcResponse } from '../support/xmlrpc.js';

afterAll(cleanupAll);

const LIMIT = 16 * 1024 * 1024;
const IE = (msg: string) => ['Internal_error', msg];

interface Case {
  name: string;
  method: string;
  params: (known: string) => unknown[];
  /** Expected error value, or a predicate on it. */
  error: unknown[] | ((e: unknown) => void);
  /** v2 error code. */
  code: number;
}

const ieStarting = (prefix: string) => (e: unknown) => {
  expect(Array.isArray(e) && e[0] === 'Internal_error', `expected Internal_error, got ${JSON.stringify(e)}`).toBe(true);
  expect((e as [string, string])[1].startsWith(prefix), `${JSON.stringify((e as unknown[])[1])} should start with ${JSON.stringify(prefix)}`).toBe(true);
};

const CASES: Case[] = [
  { name: 'unknown method', method: 'Nope.nothing', params: () => [X()], error: ['Unimplemented', 'Nope.nothing'], code: -32601 },
  { name: 'unknown method without a module', method: 'frobnicate', params: () => [X()], error: ['Unimplemented', 'frobnicate'], code: -32601 },
  {
    name: 'method names are case-sensitive: VM.START',
    method: 'VM.START',
    params: (vm) => [X({ id: vm })],
    error: ['Unimplemented', 'VM.START'],
    code: -32601,
  },
  { name: 'seed has no Vm.exists', method: 'Vm.exists', params: (vm) => [S({ id: vm })], error: ['Unimplemented', 'Vm.exists'], code: -32601 },
  {
    name: 'missing argument',
    method: 'VM.stat',
    params: () => [X()],
    error: IE("Expecting named argument 'id'"),
    code: -32602,
  },
  {
    name: 'mistyped argument paused: "maybe"',
    method: 'VM.start',
    params: (vm) => [X({ id: vm, paused: 'maybe' })],
    error: ieStarting('Type error at paused: expected bool'),
    code: -32602,
  },
  {
    name: 'mistyped vcpus: "x" inside a seed Vm.t',
    method: 'Vm.add',
    params: () => [S({ t: seedVm(vmId('bad'), { vcpus: 'x' }) })],
    error: ieStarting('Type error at t.vcpus: expected int'),
    code: -32602,
  },
  {
    name: 'mistyped nested field vm.ty.HVM.video_mib',
    method: 'VM.add',
    params: () => [X({ vm: xenopsdVm(vmId('bad'), { ty: ['HVM', { video_mib: 'big' }] }) })],
    error: ieStarting('Type error at vm.ty.HVM.video_mib: expected int'),
    code: -32602,
  },
  {
    name: 'ssidref 2^31 (xenopsd)',
    method: 'VM.add',
    params: () => [X({ vm: xenopsdVm(vmId('bad'), { ssidref: 2 ** 31 }) })],
    error: ieStarting('Integer out of range at vm.ssidref'),
    code: -32602,
  },
  {
    name: 'ssidref 2^31 (seed)',
    method: 'Vm.add',
    params: () => [S({ t: seedVm(vmId('bad'), { ssidref: 2 ** 31 }) })],
    error: ieStarting('Integer out of range at t.ssidref'),
    code: -32602,
  },
  {
    name: 'ssidref -2^31-1',
    method: 'VM.add',
    params: () => [X({ vm: xenopsdVm(vmId('bad'), { ssidref: -(2 ** 31) - 1 }) })],
    error: ieStarting('Integer out of range at vm.ssidref'),
    code: -32602,
  },
  {
    name: 'missing record key',
    method: 'VM.add',
    params: () => {
      const vm = xenopsdVm(vmId('bad'));
      delete vm.ssidref;
      return [X({ vm })];
    },
    error: ieStarting("No value found for key 'ssidref' in Vm.t"),
    code: -32602,
  },
  { name: 'empty id (VM.stat)', method: 'VM.stat', params: () => [X({ id: '' })], error: IE('invalid id'), code: -32602 },
  { name: 'empty id (VM.add)', method: 'VM.add', params: () => [X({ vm: xenopsdVm('') })], error: IE('invalid id'), code: -32602 },
  { name: 'empty id (seed Vm.add)', method: 'Vm.add', params: () => [S({ t: seedVm('') })], error: IE('invalid id'), code: -32602 },
  { name: 'malformed params [1, 2]', method: 'VM.stat', params: () => [1, 2], error: IE('malformed params'), code: -32602 },
  { name: 'malformed params: two objects', method: 'VM.stat', params: (vm) => [X({ id: vm }), X({ id: vm })], error: IE('malformed params'), code: -32602 },
];

/** After each bad input, a valid call still works. */
async function expectAlive(c: RpcClient): Promise<void> {
  expect(await c.ok('query', X())).toMatchObject({ name: 'xenops', vendor: 'xenops-ts' });
}

async function postXml(c: RpcClient, body: string, contentType = 'text/xml') {
  const reply = await c.raw(body, { headers: { 'Content-Type': contentType } });
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/xml/);
  return parseXmlRpcResponse(reply.body);
}

async function postJson(c: RpcClient, body: string) {
  const reply = await c.raw(body, { headers: { 'Content-Type': 'application/json' } });
  return { status: reply.status, ct: String(reply.headers['content-type'] ?? ''), body: reply.body, json: reply.body ? (JSON.parse(reply.body) as unknown) : undefined };
}

describe.each(['embedded', 'nats'] as const)('%s store', (store) => {
  let url: string;
  let known: string;
  const client = (codec: Codec) => new RpcClient({ url }, codec);

  beforeAll(async () => {
    if (store === 'embedded') url = (await spawnXenopsd({ mode: 'embedded' })).url!;
    else url = (await startNatsCluster()).gateway.url!;
    known = vmId('known');
    await client('json1').ok('VM.add', X({ vm: xenopsdVm(known) }));
  });

  describe.each(['json1', 'json2', 'xml'] as const)('%s', (codec) => {
    it.each(CASES)('$name', async (tc) => {
      const c = client(codec);
      const out = await c.call(tc.method, tc.params(known));
      expect(out.ok, `${tc.method} should fail`).toBe(false);
      if (!out.ok) {
        if (typeof tc.error === 'function') tc.error(out.error);
        else expect(out.error).toEqual(tc.error);
        if (codec === 'json2') {
          const err = (out.envelope as { error: { code: number; message: unknown } }).error;
          expect(err.code).toBe(tc.code);
          expect(typeof err.message).toBe('string');
        }
      }
      await expectAlive(c);
    });

    it('the lower-case module name vm.start works; VM.fast_resume is unimplemented as §5 spells it', async () => {
      const c = client(codec);
      const ghost = vmId('ghost');
      expect(await c.fail('vm.start', X({ id: ghost, paused: false }))).toEqual(['Does_not_exist', ['VM', `${ghost}/config`]]);
      expect(await c.fail('vm.fast_resume', X({ id: known }))).toEqual(['Unimplemented', 'VM.fast_resume']);
      expect(await c.ok('task.list', X())).toEqual(expect.any(Array));
      expect(await c.ok('Observer.set_enabled', { dbg: 'x', uuid: 'u', enabled: true })).toBeNull();
      await expectAlive(c);
    });

    it('boundary values that must be accepted: ssidref ±(2^31 - 1) / -2^31', async () => {
      const c = client(codec);
      for (const ssidref of [2 ** 31 - 1, -(2 ** 31)]) {
        const id = vmId('edge');
        expect(await c.ok('VM.add', X({ vm: xenopsdVm(id, { ssidref }) }))).toBe(id);
        expect((await c.ok<[Record<string, unknown>]>('VM.stat', X({ id })))[0].ssidref).toBe(ssidref);
        await c.ok('VM.remove', X({ id }));
      }
    });
  });

  describe('XML-RPC envelope errors', () => {
    const bad: [string, string][] = [
      ['truncated document', '<?xml version="1.0"?><methodCall><methodName>query</methodName><params>'],
      ['not well-formed', '<methodCall><methodName>query</methodName></methodCal>'],
      ['not a methodCall', '<foo/>'],
      ['methodCall without methodName', '<methodCall><params></params></methodCall>'],
      ['garbage after the root', '<methodCall><methodName>query</methodName></methodCall><x/>'],
    ];
    it.each(bad)('%s → fault -32700 "parse error: …"', async (_name, body) => {
      const c = client('xml');
      const r = await postXml(c, body);
      expect(r.kind).toBe('fault');
      if (r.kind === 'fault') {
        expect(r.faultCode).toBe(-32700);
        expect(r.faultString.startsWith('parse error: ')).toBe(true);
      }
      await expectAlive(c);
    });

    it('an empty body declared text/xml is a fault; a body starting with "<" is XML whatever its Content-Type', async () => {
      const c = client('xml');
      const empty = await postXml(c, '');
      expect(empty).toMatchObject({ kind: 'fault', faultCode: -32700 });
      const r = await postXml(c, '  \n<methodCall><methodName>query</methodName></methodCall>', 'application/octet-stream');
      expect(r.kind).toBe('params');
      expect((r as { value: { Status: string } }).value.Status).toBe('Success');
    });

    it('undecodable arguments are a Failure envelope, not a fault', async () => {
      const c = client('xml');
      const body =
        '<methodCall><methodName>VM.start</methodName><params><param><value><struct>' +
        `<member><name>debug_info</name><value>x</value></member><member><name>id</name><value>${known}</value></member>` +
        '<member><name>paused</name><value><boolean>maybe</boolean></value></member>' +
        '</struct></value></param></params></methodCall>';
      const r = await postXml(c, body);
      expect(r.kind).toBe('params');
      const v = (r as { value: { Status: string; ErrorDescription: [string, string] } }).value;
      expect(v.Status).toBe('Failure');
      expect(v.ErrorDescription[0]).toBe('Internal_error');
      expect(v.ErrorDescription[1]).toMatch(/^Type error at paused/);
      await expectAlive(c);
    });

    it('a methodCall without <params> calls a unit method', async () => {
      const r = await postXml(client('xml'), '<methodCall><methodName>query</methodName></methodCall>');
      expect(r).toMatchObject({ kind: 'params', value: { Status: 'Success', Value: { name: 'xenops' } } });
    });
  });

  describe('JSON-RPC envelope errors', () => {
    const bad: [string, string][] = [
      ['unparseable JSON', '{"method":"query","params":[{}],'],
      ['unparseable JSON that declares 2.0', '{"jsonrpc":"2.0","method":"query",'],
      ['neither object nor array', '42'],
      ['a string', '"query"'],
      ['missing method', '{"params":[],"id":5}'],
    ];
    it.each(bad)('%s → v1 Internal_error "invalid JSON-RPC request: …" with id null', async (_name, body) => {
      const c = client('json1');
      const r = await postJson(c, body);
      expect(r.status).toBe(200);
      expect(r.ct).toMatch(/^application\/json/);
      expect(r.json).toEqual({ result: null, error: ['Internal_error', expect.stringMatching(/^invalid JSON-RPC request: /)], id: null });
      await expectAlive(c);
    });

    it('v2 request without method → -32600 with the same variant in data, id null', async () => {
      const r = await postJson(client('json2'), '{"jsonrpc":"2.0","params":[],"id":9}');
      expect(r.json).toEqual({
        jsonrpc: '2.0',
        error: { code: -32600, message: expect.any(String), data: ['Internal_error', expect.stringMatching(/^invalid JSON-RPC request: /)] },
        id: null,
      });
    });

    it('v1 params must be an array; v2 accepts an object', async () => {
      const v1 = await postJson(client('json1'), JSON.stringify({ method: 'VM.stat', params: X({ id: known }), id: 1 }));
      expect(v1.json).toEqual({ result: null, error: IE('malformed params'), id: 1 });
      const v2 = await postJson(client('json2'), JSON.stringify({ jsonrpc: '2.0', method: 'VM.stat', params: X({ id: known }), id: 1 }));
      expect((v2.json as { result: [{ id: string }] }).result[0].id).toBe(known);
    });

    it('a request without id is answered over HTTP (id null); the id is echoed verbatim', async () => {
      const r = await postJson(client('json1'), JSON.stringify({ method: 'query', params: [X()] }));
      expect(r.json).toMatchObject({ error: null, id: null, result: { name: 'xenops' } });
      for (const id of ['abc', 0, { a: [1] }, 1.5]) {
        const e = await postJson(client('json1'), JSON.stringify({ method: 'query', params: [X()], id }));
        expect((e.json as { id: unknown }).id).toEqual(id);
      }
    });

    it('v2 batches: in order, bad entries -32600, notifications unanswered; empty batch; notifications only → 204', async () => {
      const c = client('json2');
      const r = await postJson(
        c,
        JSON.stringify([
          { jsonrpc: '2.0', method: 'query', params: [X()], id: 1 },
          5,
          { jsonrpc: '2.0', method: 'VM.exists', params: [X({ id: known })] },
          { jsonrpc: '2.0', method: 'VM.exists', params: [X({ id: known })], id: 'b' },
          { jsonrpc: '2.0', method: 'VM.nope', params: [X()], id: 3 },
        ]),
      );
      expect(r.status).toBe(200);
      expect(r.json).toEqual([
        { jsonrpc: '2.0', result: expect.objectContaining({ name: 'xenops' }), id: 1 },
        { jsonrpc: '2.0', error: expect.objectContaining({ code: -32600 }), id: null },
        { jsonrpc: '2.0', result: true, id: 'b' },
        { jsonrpc: '2.0', error: { code: -32601, message: expect.any(String), data: ['Unimplemented', 'VM.nope'] }, id: 3 },
      ]);
      const empty = await postJson(c, '[]');
      expect(empty.json).toEqual({ jsonrpc: '2.0', error: expect.objectContaining({ code: -32600 }), id: null });
      const notes = await postJson(c, JSON.stringify([{ jsonrpc: '2.0', method: 'query', params: [X()] }]));
      expect(notes.status).toBe(204);
      expect(notes.body).toBe('');
      await expectAlive(client('json1'));
    });
  });

  describe('HTTP rules', () => {
    it('POST to any path is RPC; GET / and PUT /x → 404 empty; GET /healthz → 200', async () => {
      for (const p of ['/', '/xenops', '/services/xenops']) {
        const r = await httpRequest({ url }, { path: p, body: JSON.stringify({ method: 'query', params: [X()], id: 1 }) });
        expect(r.status).toBe(200);
        expect(r.headers['content-length']).toBeDefined();
        expect(JSON.parse(r.body)).toMatchObject({ result: { name: 'xenops' } });
      }
      for (const [method, p] of [
        ['GET', '/'],
        ['PUT', '/x'],
        ['DELETE', '/'],
        ['GET', '/nothing'],
      ] as const) {
        const r = await httpRequest({ url }, { method, path: p, ...(method === 'PUT' ? { body: '{}' } : {}) });
        expect(r.status, `${method} ${p}`).toBe(404);
        expect(r.body).toBe('');
      }
      const h = await httpRequest({ url }, { method: 'GET', path: '/healthz' });
      expect(h.status).toBe(200);
      expect(JSON.parse(h.body)).toEqual({ status: 'ok', seq: expect.any(Number), mode: store, instance_id: expect.any(String) });
    });

    it('keep-alive: several requests, good and bad, on one connection', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const u = new URL(url);
      const sockets = new Set<unknown>();
      const post = (body: string, ct = 'application/json') =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request(
            { host: u.hostname, port: Number(u.port), path: '/', method: 'POST', agent, headers: { 'Content-Type': ct, 'Content-Length': Buffer.byteLength(body) } },
            (res) => {
              let b = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (b += c));
              res.on('end', () => resolve({ status: res.statusCode!, body: b }));
            },
          );
          req.on('socket', (s) => sockets.add(s));
          req.on('error', reject);
          req.end(body);
        });
      try {
        const bodies = [
          JSON.stringify({ method: 'query', params: [X()], id: 1 }),
          '{"method":',
          encodeXmlRpcCall('query', [X()]),
          '<methodCall>',
          JSON.stringify({ method: 'VM.stat', params: [1, 2], id: 2 }),
          JSON.stringify({ method: 'query', params: [X()], id: 3 }),
        ];
        for (const b of bodies) expect((await post(b, b.startsWith('<') ? 'text/xml' : 'application/json')).status).toBe(200);
        expect(sockets.size).toBe(1);
      } finally {
        agent.destroy();
      }
    });

    it('POST with neither Content-Length nor chunked encoding → 411 with an empty body', async () => {
      const u = new URL(url);
      const r = await rawHttp(url, `POST / HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nConnection: close`);
      expect(r.status).toBe(411);
      expect(r.body).toBe('');
      await expectAlive(client('json1'));
    });

    it('chunked bodies are accepted', async () => {
      const r = await httpRequest({ url }, { body: JSON.stringify({ method: 'query', params: [X()], id: 4 }), chunked: true, headers: { 'Transfer-Encoding': 'chunked' } });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ id: 4, result: { name: 'xenops' } });
    });

    it('a body of exactly 16 MiB is not rejected for its size', async () => {
      const body = Buffer.alloc(LIMIT, ' ');
      body.write('{"method":"query","params":[{}],"id":77}', 0);
      const u = new URL(url);
      const r = await rawHttp(url, `POST / HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT}\r\nConnection: close`, body);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ id: 77, result: { name: 'xenops' } });
    });

    it('a JSON body of 16 MiB + 1 → 413 with the v1 Failure envelope, connection closed; the next request works', async () => {
      const body = Buffer.alloc(LIMIT + 1, ' ');
      body.write('{"method":"query","params":[{}],"id":1}', 0);
      const u = new URL(url);
      const r = await rawHttp(url, `POST / HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT + 1}`, body);
      expect(r.status).toBe(413);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(r.body)).toEqual({ result: null, error: IE('request body exceeds 16777216 bytes'), id: null });
      expect(r.closed).toBe(true);
      await expectAlive(client('json1'));
      await expectAlive(client('xml'));
    });

    it('a chunked JSON body over 16 MiB → 413', async () => {
      const u = new URL(url);
      const payload = Buffer.alloc(LIMIT + 1, ' ');
      payload.write('{"method":"query"', 0);
      const chunked = Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]);
      const r = await rawHttp(url, `POST / HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked`, chunked);
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body)).toEqual({ result: null, error: IE('request body exceeds 16777216 bytes'), id: null });
      await expectAlive(client('json1'));
    });

    it('an XML body (text/xml) of 16 MiB + 1 → 413 with an XML-RPC Failure envelope', async () => {
      const body = Buffer.alloc(LIMIT + 1, ' ');
      body.write('<?xml version="1.0"?><methodCall><methodName>query</methodName>', 0);
      const u = new URL(url);
      const r = await rawHttp(url, `POST / HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: text/xml\r\nContent-Length: ${LIMIT + 1}`, body);
      expect(r.status).toBe(413);
      expect(r.headers['content-type']).toMatch(/^text\/xml/);
      expect(parseXmlRpcResponse(r.body)).toEqual({
        kind: 'params',
        value: { Status: 'Failure', ErrorDescription: IE('request body exceeds 16777216 bytes') },
      });
      await expectAlive(client('xml'));
    });

    it('an XML body (first byte "<", no Content-Type) of 16 MiB + 1 → 413 with an XML-RPC Failure envelope', async () => {
      const body = Buffer.alloc(LIMIT + 1, ' ');
      body.write('  <?xml version="1.0"?><methodCall><methodName>query</methodName>', 0);
      const u = new URL(url);
      const r = await rawHttp(url, `POST / HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: ${LIMIT + 1}`, body);
      expect(r.status).toBe(413);
      expect(r.headers['content-type']).toMatch(/^text\/xml/);
      expect(parseXmlRpcResponse(r.body)).toEqual({
        kind: 'params',
        value: { Status: 'Failure', ErrorDescription: IE('request body exceeds 16777216 bytes') },
      });
      await expectAlive(client('xml'));
    });
  });
});

describe('start-up and access control (embedded)', () => {
  it('--listen 0.0.0.0:0 without --token-file refuses to start with exit code 2, naming the token', async () => {
    const dir = await makeTempDir();
    const r = await runXenopsdToExit(['--listen', '0.0.0.0:0', '--data-dir', dir, '--socket', 'off']);
    expect(r.code).toBe(2);
    expect(r.stderr.toLowerCase()).toContain('token');
  });

  it('unknown flags and bad values exit 2', async () => {
    const dir = await makeTempDir();
    expect((await runXenopsdToExit(['--no-such-flag', '--data-dir', dir])).code).toBe(2);
    expect((await runXenopsdToExit(['--listen', 'nonsense', '--data-dir', dir])).code).toBe(2);
    expect((await runXenopsdToExit(['--role', 'agent', '--data-dir', dir])).code).toBe(2);
  });

  it('with --token-file: 401 without or with a wrong Bearer token, 200 with it, /healthz open, socket needs none', async () => {
    const dir = await makeTempDir();
    const tokenFile = path.join(dir, 'token');
    const token = `tok-${vmId('')}`;
    await writeFile(tokenFile, `${token}\nsecond line is ignored\n`);
    await chmod(tokenFile, 0o600);
    const svc = await spawnXenopsd({ mode: 'embedded', dataDir: dir, extraArgs: ['--listen', '0.0.0.0:0', '--token-file', tokenFile] });
    const port = new URL(svc.url!).port;
    const url = `http://127.0.0.1:${port}`;
    const body = JSON.stringify({ method: 'query', params: [X()], id: 1 });

    const none = await httpRequest({ url }, { body });
    expect(none.status).toBe(401);
    expect(none.body).toBe('');
    const wrong = await httpRequest({ url, token: `${token}x` }, { body });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toBe('');
    const basic = await httpRequest({ url }, { body, headers: { Authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    const xmlNone = await httpRequest({ url }, { body: encodeXmlRpcCall('query', [X()]), headers: { 'Content-Type': 'text/xml' } });
    expect(xmlNone.status).toBe(401);

    const good = await httpRequest({ url, token }, { body });
    expect(good.status).toBe(200);
    expect(JSON.parse(good.body)).toMatchObject({ result: { name: 'xenops' } });
    expect(await new RpcClient({ url, token }, 'xml').ok('query', X())).toMatchObject({ name: 'xenops' });

    const health = await httpRequest({ url }, { method: 'GET', path: '/healthz' });
    expect(health.status).toBe(200);

    expect(await svc.socketClient('json1').ok('query', X())).toMatchObject({ name: 'xenops' });
    expect(svc.stderr).not.toContain(token);
    expect(await svc.stop()).toBe(0);
    expect(svc.stderr).not.toContain(token);
  });

  it('--token-file also applies to a loopback listener, and refused attempts are logged without the token', async () => {
    const dir = await makeTempDir();
    const tokenFile = path.join(dir, 'token');
    const token = `tok-${vmId('')}`;
    await writeFile(tokenFile, `${token}\n`);
    const svc = await spawnXenopsd({ mode: 'embedded', dataDir: dir, extraArgs: ['--token-file', tokenFile] });
    const body = JSON.stringify({ method: 'query', params: [X()], id: 1 });
    expect((await httpRequest({ url: svc.url! }, { body })).status).toBe(401);
    expect((await httpRequest({ url: svc.url!, token: 'nope' }, { body })).status).toBe(401);
    expect((await httpRequest({ url: svc.url!, token }, { body })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(svc.stderr).toMatch(/401/);
    expect(svc.stderr).not.toContain(token);
    await svc.stop();
  });

  it('--socket-mode widens the socket mode', async () => {
    const svc = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--socket-mode', '0660'] });
    expect(((await stat(svc.socketPath!)).mode & 0o777).toString(8)).toBe('660');
    await svc.stop();
  });

  it('the Unix socket is created with mode 0600', async () => {
    const svc = await spawnXenopsd({ mode: 'embedded' });
    const st = await stat(svc.socketPath!);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o777).toString(8)).toBe('600');
    expect(await svc.socketClient('xml').ok('query', X())).toMatchObject({ name: 'xenops' });
    await svc.stop();
  });
});
