import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders, type RequestOptions } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Dispatcher } from '../rpc/handler.js';
import { wireInToOut } from '../rpc/values.js';
import { isLoopbackAddress, startHttpServer, type HttpService } from './server.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

const dispatch: Dispatcher = async (req) => {
  if (req.method === 'slow') await new Promise((r) => setTimeout(r, 300));
  const args = req.params.form === 'named' ? req.params.args : {};
  return { ok: true, value: wireInToOut(args['x'] ?? req.method) };
};

function send(target: { port: number } | { socketPath: string }, opts: RequestOptions & { body?: string | Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const { body, ...rest } = opts;
    const req = request({ host: '127.0.0.1', ...target, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), reusedSocket: req.reusedSocket }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const rpc = (x: string) => JSON.stringify({ method: 'echo', params: [{ x }], id: 1 });

/** Writes raw bytes on a fresh TCP connection and returns everything read until the server closes. */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
    s.write(data);
    setTimeout(() => s.end(), 300);
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenops-http-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('isLoopbackAddress', () => {
  it('accepts 127/8, ::1, localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
      expect(isLoopbackAddress(h), h).toBe(true);
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '', '::2', '127.0.0.256']) {
      expect(isLoopbackAddress(h), h).toBe(false);
    }
  });
});

describe('HTTP server without token', () => {
  let svc: HttpService;
  let port: number;
  let socketPath: string;
  beforeAll(async () => {
    socketPath = join(dir, 'plain.sock');
    svc = await startHttpServer({
      listen: { host: '127.0.0.1', port: 0 },
      socketPath,
      dispatch,
      routes: {
        '/healthz': (_req, res) => {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end('{"status":"ok"}');
        },
      },
    });
    port = svc.tcpAddress!.port;
  });
  afterAll(() => svc.close());

  it('reports the real port and the socket path', () => {
    expect(port).toBeGreaterThan(0);
    expect(svc.tcpAddress!.host).toBe('127.0.0.1');
    expect(svc.socketPath).toBe(socketPath);
  });

  it('POST to any path is RPC (JSON and XML)', async () => {
    for (const path of ['/', '/xenops', '/services/xenops']) {
      const r = await send({ port }, { method: 'POST', path, body: rpc('hi'), headers: { 'Content-Type': 'application/json' } });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
      expect(r.body).toBe('{"result":"hi","error":null,"id":1}');
    }
    const x = await send(
      { port },
      { method: 'POST', path: '/', body: '<methodCall><methodName>ping</methodName></methodCall>', headers: { 'Content-Type': 'text/xml' } },
    );
    expect(x.status).toBe(200);
    expect(x.headers['content-type']).toBe('text/xml');
    expect(x.body).toContain('<member><name>Value</name><value>ping</value></member>');
  });

  it('accepts a chunked body', async () => {
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, reusedSocket: false }));
      });
      req.on('error', reject);
      req.write('{"method":"echo",');
      req.write('"params":[{"x":"chunked"}],"id":2}');
      req.end();
    });
    expect(r.body).toBe('{"result":"chunked","error":null,"id":2}');
  });

  it('GET of a registered route; 404 for everything else', async () => {
    expect((await send({ port }, { method: 'GET', path: '/healthz' })).body).toBe('{"status":"ok"}');
    expect((await send({ port }, { method: 'GET', path: '/healthz?x=1' })).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/constructor'],
      ['PUT', '/x'],
      ['DELETE', '/'],
      ['HEAD', '/healthz'],
    ] as const) {
      const r = await send({ port }, { method, path, body: method === 'PUT' ? 'data' : undefined });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body).toBe('');
    }
  });

  it('411 for a POST with neither Content-Length nor chunked', async () => {
    const text = await raw(port, 'POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 411 /);
    expect(text).toMatch(/content-length: 0/i);
    expect(text.endsWith('\r\n\r\n')).toBe(true);
  });

  it('keep-alive: two requests on one connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const a = await send({ port }, { method: 'POST', path: '/', agent, body: rpc('a') });
      const b = await send({ port }, { method: 'POST', path: '/', agent, body: rpc('b') });
      expect([a.body, b.body]).toEqual(['{"result":"a","error":null,"id":1}', '{"result":"b","error":null,"id":1}']);
      expect(a.reusedSocket).toBe(false);
      expect(b.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('413 for a 17 MiB body (declared length), connection closed; the next connection works', async () => {
    const big = Buffer.alloc(17 * 1024 * 1024, 0x20);
    big.write('{"method":"echo","params":[{"x":"', 0);
    const r = await send({ port }, { method: 'POST', path: '/', body: big });
    expect(r.status).toBe(413);
    expect(r.headers['connection']).toBe('close');
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toEqual({ result: null, error: ['Internal_error', 'request body exceeds 16777216 bytes'], id: null });
    expect((await send({ port }, { method: 'POST', path: '/', body: rpc('after') })).body).toContain('"after"');
  });

  it('413: a client that writes the whole oversized body is not reset before reading the reply', async () => {
    const body = Buffer.alloc(17 * 1024 * 1024, 0x20);
    body[0] = 0x7b; // '{'
    const result = await new Promise<{ writeError?: string; text: string }>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let writeError: string | undefined;
      const chunks: Buffer[] = [];
      s.on('data', (c) => chunks.push(c));
      s.on('error', (e: NodeJS.ErrnoException) => (writeError = e.code));
      s.on('close', () => resolve({ writeError, text: Buffer.concat(chunks).toString() }));
      s.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.end(body);
    });
    expect(result.writeError).toBeUndefined();
    expect(result.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(result.text).toContain('"request body exceeds 16777216 bytes"');
  });

  it('413 for a chunked body growing past the limit, XML format from the bytes received', async () => {
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, reusedSocket: false }));
      });
      req.on('error', () => {}); // the server may close while we still write
      req.write('<?xml version="1.0"?><methodCall>');
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 17; i++) req.write(chunk);
      req.end();
    });
    expect(r.status).toBe(413);
    expect(r.headers['content-type']).toBe('text/xml');
    expect(r.body).toContain('<value>request body exceeds 16777216 bytes</value>');
  });

  it('413 is sent before a declared over-limit body has been sent', async () => {
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'Content-Length': String(1 << 30) } },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            resolve({ status: res.statusCode!, headers: res.headers, body, reusedSocket: false });
            req.destroy();
          });
        },
      );
      req.on('error', reject);
      req.write('{"method":"x"'); // 1 GiB declared, a few bytes sent, never finished
    });
    expect(r.status).toBe(413);
    expect(r.headers['content-type']).toBe('application/json');
  });

  it('Expect: 100-continue with an over-limit length gets 413 without sending the body', async () => {
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        headers: { 'Content-Length': String(20 * 1024 * 1024), Expect: '100-continue', 'Content-Type': 'text/xml' },
      });
      req.on('continue', () => reject(new Error('unexpected 100 Continue')));
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, headers: res.headers, body, reusedSocket: false });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(r.status).toBe(413);
    expect(r.headers['content-type']).toBe('text/xml');
  });

  it('serves the Unix socket with mode 0600', async () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    const r = await send({ socketPath }, { method: 'POST', path: '/', body: rpc('unix') });
    expect(r.body).toBe('{"result":"unix","error":null,"id":1}');
  });

  it('refuses a socket path somebody listens on', async () => {
    await expect(startHttpServer({ socketPath, dispatch })).rejects.toThrow(/listening/);
  });
});

describe('HTTP server with token', () => {
  const token = 's3cret-token';
  let svc: HttpService;
  let port: number;
  let socketPath: string;
  const lines: string[] = [];
  beforeAll(async () => {
    socketPath = join(dir, 'token.sock');
    // a stale socket file left by a dead process is replaced
    const res = spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`,
    ]);
    expect(res.status).toBe(0);
    expect(existsSync(socketPath)).toBe(true);
    svc = await startHttpServer({
      listen: { host: '127.0.0.1', port: 0 },
      socketPath,
      socketMode: 0o660,
      token,
      dispatch,
      log: (l) => lines.push(l),
      routes: {
        '/healthz': (_req, res) => {
          res.end('ok');
        },
        '/metrics': (_req, res) => {
          res.end('m 1\n');
        },
      },
    });
    port = svc.tcpAddress!.port;
  });
  afterAll(() => svc.close());
  afterEach(() => {
    for (const l of lines) expect(l).not.toContain(token);
  });

  it('401 without or with a wrong token, logged without the token', async () => {
    for (const headers of [{}, { Authorization: 'Bearer nope' }, { Authorization: `Basic ${token}` }, { Authorization: `Bearer ${token}x` }]) {
      const r = await send({ port }, { method: 'POST', path: '/', body: rpc('x'), headers });
      expect(r.status).toBe(401);
      expect(r.body).toBe('');
    }
    expect((await send({ port }, { method: 'GET', path: '/metrics' })).status).toBe(401);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines[0]).toMatch(/401/);
  });

  it('200 with the token', async () => {
    const r = await send({ port }, { method: 'POST', path: '/', body: rpc('ok'), headers: { Authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect(r.body).toBe('{"result":"ok","error":null,"id":1}');
    expect((await send({ port }, { method: 'GET', path: '/metrics', headers: { Authorization: `bearer ${token}` } })).body).toBe('m 1\n');
  });

  it('GET /healthz needs no token', async () => {
    const r = await send({ port }, { method: 'GET', path: '/healthz' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
  });

  it('the Unix socket never needs the token; socketMode applies', async () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o660);
    const r = await send({ socketPath }, { method: 'POST', path: '/', body: rpc('unix') });
    expect(r.status).toBe(200);
    expect((await send({ socketPath }, { method: 'GET', path: '/metrics' })).status).toBe(200);
  });
});

describe('close()', () => {
  it('finishes in-flight requests, closes idle keep-alive connections, stops accepting', async () => {
    const svc = await startHttpServer({ listen: { host: '127.0.0.1', port: 0 }, socketPath: join(dir, 'close.sock'), dispatch });
    const port = svc.tcpAddress!.port;
    const agent = new Agent({ keepAlive: true });
    await send({ port }, { method: 'POST', path: '/', agent, body: rpc('warm') }); // leaves an idle keep-alive socket
    const inflight = send({ port }, { method: 'POST', path: '/', body: JSON.stringify({ method: 'slow', params: [], id: 1 }) });
    await new Promise((r) => setTimeout(r, 50));
    const closed = svc.close();
    const r = await inflight;
    expect(r.body).toBe('{"result":"slow","error":null,"id":1}');
    expect(r.headers['connection']).toBe('close');
    await closed;
    await expect(send({ port }, { method: 'POST', path: '/', body: rpc('late') })).rejects.toThrow();
    expect(existsSync(join(dir, 'close.sock'))).toBe(false);
    agent.destroy();
  });

  it('close(graceMs) force-closes long responses', async () => {
    const svc = await startHttpServer({
      listen: { host: '127.0.0.1', port: 0 },
      dispatch,
      routes: {
        '/events': (_req, res) => {
          res.writeHead(200, { 'Content-Type': 'text/event-stream' });
          res.write(': hello\n\n');
        },
      },
    });
    const port = svc.tcpAddress!.port;
    await new Promise<void>((resolve) => {
      request({ host: '127.0.0.1', port, path: '/events' }, (res) => {
        res.once('data', () => resolve());
        res.on('error', () => {});
      })
        .on('error', () => {})
        .end();
    });
    const t0 = Date.now();
    await svc.close(100);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
