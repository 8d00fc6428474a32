import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeQmpServer, okReply, type FakeQmpServer } from '../../testing/fake-qmp-server.js';
import {
  QmpAbortedError,
  QmpClosedError,
  QmpCommandError,
  QmpConnectError,
  QmpConnectionLostError,
  QmpProtocolError,
  QmpTimeoutError,
} from './errors.js';
import { QmpClient } from './qmp-client.js';
import type { QmpEvent } from './types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const event = (name: string, data?: Record<string, unknown>) => ({ event: name, data, timestamp: { seconds: 1, microseconds: 2 } });

let servers: FakeQmpServer[] = [];
let clients: QmpClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

async function serve(...args: Parameters<typeof fakeQmpServer>): Promise<FakeQmpServer> {
  const s = fakeQmpServer(...args);
  servers.push(s);
  await s.listen();
  return s;
}

async function connect(server: FakeQmpServer, options: Parameters<typeof QmpClient.connect>[1] = {}): Promise<QmpClient> {
  const c = await QmpClient.connect(server.path, { timeoutMs: 2_000, ...options });
  clients.push(c);
  return c;
}

/** Collects protocol errors reported by a client. */
function violations(client: QmpClient): QmpProtocolError[] {
  const seen: QmpProtocolError[] = [];
  client.on('protocol-error', (e) => seen.push(e));
  return seen;
}

describe('QmpClient handshake', () => {
  it('reads the greeting and leaves negotiation mode with qmp_capabilities before anything else', async () => {
    const server = await serve();
    const client = await connect(server);
    expect(client.greeting.QMP.version.qemu).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(server.connections[0]?.received.map((c) => c.execute)).toEqual(['qmp_capabilities']);
    expect(client.isOpen).toBe(true);
  });

  it('waits for a socket that appears later (QEMU still starting), within its bound', async () => {
    const server = fakeQmpServer();
    servers.push(server);
    const connecting = QmpClient.connect(server.path, { timeoutMs: 3_000, retryIntervalMs: 10 });
    await sleep(200);
    await server.listen();
    const client = await connecting;
    clients.push(client);
    await expect(client.execute('query-status')).resolves.toEqual({});
  });

  it('gives up with QmpConnectError when the socket never appears', async () => {
    const server = fakeQmpServer();
    servers.push(server);
    const started = Date.now();
    const err = await QmpClient.connect(server.path, { timeoutMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect(err.code).toBe('QMP_CONNECT_FAILED');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops trying when its signal aborts (the QEMU process exited)', async () => {
    const server = fakeQmpServer();
    servers.push(server);
    const gone = new AbortController();
    setTimeout(() => gone.abort(new Error('QEMU exited')), 50);
    const err = await QmpClient.connect(server.path, { timeoutMs: 10_000, signal: gone.signal }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect(err.cause).toEqual(new Error('QEMU exited'));
  });

  it.each([
    ['a non-JSON greeting', 'Welcome to not-QEMU\n', 'not-json'],
    ['JSON that is not a greeting', '{"hello": 1}\n', 'bad-greeting'],
    ['a greeting without capabilities', '{"QMP": {"version": {}}}\n', 'bad-greeting'],
  ])('refuses %s with QmpConnectError caused by a QmpProtocolError', async (_, greeting, violation) => {
    const server = await serve(undefined, { greeting });
    const err = await QmpClient.connect(server.path, { timeoutMs: 2_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect(err.cause).toBeInstanceOf(QmpProtocolError);
    expect(err.cause.violation).toBe(violation);
  });

  it('times out when no greeting comes', async () => {
    const server = await serve(undefined, { greeting: null });
    const err = await QmpClient.connect(server.path, { timeoutMs: 200 }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect(err.cause).toBeInstanceOf(QmpTimeoutError);
  });

  it('fails with QmpConnectError when capabilities negotiation is refused', async () => {
    const server = await serve((cmd, conn) => conn.reply({ error: { class: 'CommandNotFound', desc: 'nope' }, id: cmd.id }));
    const err = await QmpClient.connect(server.path, { timeoutMs: 2_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect(err.cause).toBeInstanceOf(QmpCommandError);
  });
});

describe('QmpClient commands', () => {
  it('matches replies to commands by id, whatever order they come in', async () => {
    const held: Array<{ execute: string; id?: unknown }> = [];
    const server = await serve((cmd, conn) => {
      if (cmd.execute === 'qmp_capabilities') return conn.reply(okReply(cmd.id));
      held.push(cmd);
      if (held.length === 3) for (const c of held.reverse()) conn.reply(okReply(c.id, { answer: c.execute }));
    });
    const client = await connect(server);
    const replies = await Promise.all([client.execute('one'), client.execute('two'), client.execute('three')]);
    expect(replies).toEqual([{ answer: 'one' }, { answer: 'two' }, { answer: 'three' }]);
    expect(server.connections[0]?.received.slice(1).map((c) => c.id)).toHaveLength(3);
  });

  it('sends arguments and omits them when there are none', async () => {
    const server = await serve();
    const client = await connect(server);
    await client.execute('device_del', { id: 'vbd1' });
    await client.execute('stop');
    const [, del, stop] = server.connections[0]?.received ?? [];
    expect(del).toMatchObject({ execute: 'device_del', arguments: { id: 'vbd1' } });
    expect(stop).not.toHaveProperty('arguments');
  });

  it("rejects with QmpCommandError carrying QEMU's error class and description", async () => {
    const server = await serve((cmd, conn) =>
      cmd.execute === 'qmp_capabilities' ? conn.reply(okReply(cmd.id)) : conn.reply({ error: { class: 'DeviceNotFound', desc: "Device 'x' not found" }, id: cmd.id }),
    );
    const client = await connect(server);
    const err = await client.execute('device_del', { id: 'x' }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpCommandError);
    expect(err).toMatchObject({ name: 'QmpCommandError', code: 'QMP_COMMAND_FAILED', command: 'device_del', errorClass: 'DeviceNotFound', desc: "Device 'x' not found" });
  });

  it('times out a command with no reply, and takes its late reply quietly', async () => {
    let late: (() => void) | undefined;
    const server = await serve((cmd, conn) => {
      if (cmd.execute === 'slow') late = () => conn.reply(okReply(cmd.id));
      else conn.reply(okReply(cmd.id));
    });
    const client = await connect(server);
    const seen = violations(client);
    const err = await client.execute('slow', undefined, { timeoutMs: 50 }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpTimeoutError);
    expect(err).toMatchObject({ code: 'QMP_TIMEOUT', command: 'slow', timeoutMs: 50 });
    late?.();
    await expect(client.execute('query-status')).resolves.toEqual({});
    expect(seen).toEqual([]);
  });

  it('abandons a wait when its signal aborts, with the reason as cause', async () => {
    const server = await serve((cmd, conn) => (cmd.execute === 'qmp_capabilities' ? conn.reply(okReply(cmd.id)) : undefined));
    const client = await connect(server);
    const ac = new AbortController();
    const pending = client.execute('hang', undefined, { signal: ac.signal });
    ac.abort(new Error('cancelled by the task'));
    const err = (await pending.catch((e: unknown) => e)) as QmpAbortedError;
    expect(err).toBeInstanceOf(QmpAbortedError);
    expect(err.cause).toEqual(new Error('cancelled by the task'));
    await expect(client.execute('x', undefined, { signal: ac.signal })).rejects.toBeInstanceOf(QmpAbortedError);
  });

  it('fails pending and later commands with QmpConnectionLostError when QEMU goes away', async () => {
    const server = await serve((cmd, conn) => (cmd.execute === 'qmp_capabilities' ? conn.reply(okReply(cmd.id)) : conn.socket.destroy()));
    const client = await connect(server);
    const closed = new Promise<unknown>((resolve) => client.once('close', resolve));
    const err = await client.execute('quit').catch((e) => e);
    expect(err).toBeInstanceOf(QmpConnectionLostError);
    expect(err.code).toBe('QMP_CONNECTION_LOST');
    expect(await closed).toBe(err);
    expect(client.isOpen).toBe(false);
    await expect(client.execute('query-status')).rejects.toBe(err);
  });

  it('close() fails pending commands with QmpClosedError and is idempotent', async () => {
    const server = await serve((cmd, conn) => (cmd.execute === 'qmp_capabilities' ? conn.reply(okReply(cmd.id)) : undefined));
    const client = await connect(server);
    const pending = client.execute('hang').catch((e) => e);
    await client.close();
    await client.close();
    expect(await pending).toBeInstanceOf(QmpClosedError);
    await expect(client.execute('query-status')).rejects.toMatchObject({ code: 'QMP_CLOSED' });
  });
});

describe('QmpClient events', () => {
  it('delivers events to listeners, to waitForEvent (with a predicate) and to an iterator that ends on close', async () => {
    const server = await serve();
    const client = await connect(server);
    const conn = server.connections[0];
    const heard: QmpEvent[] = [];
    client.on('event', (e) => heard.push(e));
    const iterated: string[] = [];
    const iterating = (async () => {
      for await (const e of client.events()) iterated.push(e.event);
    })();
    const deleted = client.waitForEvent('DEVICE_DELETED', { predicate: (e) => e.data?.device === 'vbd2' });
    conn?.reply(event('STOP'));
    conn?.reply(event('DEVICE_DELETED', { device: 'vbd1' }));
    conn?.reply(event('DEVICE_DELETED', { device: 'vbd2' }));
    await expect(deleted).resolves.toMatchObject({ data: { device: 'vbd2' } });
    await client.close();
    await iterating;
    expect(heard.map((e) => e.event)).toEqual(['STOP', 'DEVICE_DELETED', 'DEVICE_DELETED']);
    expect(iterated).toEqual(['STOP', 'DEVICE_DELETED', 'DEVICE_DELETED']);
  });

  it('waitForEvent times out, aborts, and fails when the connection is lost', async () => {
    const server = await serve();
    const client = await connect(server);
    await expect(client.waitForEvent('SHUTDOWN', { timeoutMs: 30 })).rejects.toBeInstanceOf(QmpTimeoutError);
    const ac = new AbortController();
    const aborted = client.waitForEvent('SHUTDOWN', { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toBeInstanceOf(QmpAbortedError);
    const lost = client.waitForEvent('SHUTDOWN');
    server.connections[0]?.socket.destroy();
    await expect(lost).rejects.toBeInstanceOf(QmpConnectionLostError);
  });

  it('an iterator stops when its signal aborts', async () => {
    const server = await serve();
    const client = await connect(server);
    const ac = new AbortController();
    const iterator = client.events({ signal: ac.signal });
    server.connections[0]?.reply(event('RESUME'));
    await expect(iterator.next()).resolves.toMatchObject({ value: { event: 'RESUME' }, done: false });
    ac.abort();
    await expect(iterator.next()).resolves.toMatchObject({ done: true });
  });
});

describe('QmpClient with bad input from QEMU', () => {
  async function afterBadLines(lines: string[], maxLineBytes?: number) {
    const server = await serve();
    const client = await connect(server, maxLineBytes ? { maxLineBytes } : {});
    const seen = violations(client);
    const heard: QmpEvent[] = [];
    client.on('event', (e) => heard.push(e));
    for (const l of lines) server.connections[0]?.raw(l);
    // The connection still works afterwards, and nothing bad became an event.
    await expect(client.execute('query-status')).resolves.toEqual({});
    return { seen, heard };
  }

  it.each([
    ['a non-JSON line', 'not json at all\n', 'not-json'],
    ['a truncated JSON line', '{"return": {}, "id": \n', 'not-json'],
    ['a JSON array', '[1, 2, 3]\n', 'unexpected-shape'],
    ['a JSON scalar', '42\n', 'unexpected-shape'],
    ['an object of no known kind', '{"hello": "world"}\n', 'unexpected-shape'],
    ['an event without a timestamp', '{"event": "STOP"}\n', 'unexpected-shape'],
    ['an event whose name is not a string', '{"event": 7, "timestamp": {"seconds": 1, "microseconds": 2}}\n', 'unexpected-shape'],
    ['an event whose data is not an object', '{"event": "STOP", "data": [1], "timestamp": {"seconds": 1, "microseconds": 2}}\n', 'unexpected-shape'],
    ['a second greeting', '{"QMP": {"version": {}, "capabilities": []}}\n', 'unexpected-shape'],
    ['a reply to an id never sent', '{"return": {}, "id": 987654}\n', 'unknown-id'],
    ['a reply with a string id', '{"return": {}, "id": "x"}\n', 'unknown-id'],
    ['a reply without an id', '{"return": {}}\n', 'missing-id'],
    ['an error reply without an id', '{"error": {"class": "GenericError", "desc": "JSON parse error"}}\n', 'missing-id'],
  ])('reports %s as a QmpProtocolError and goes on', async (_, line, violation) => {
    const { seen, heard } = await afterBadLines([line]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ name: 'QmpProtocolError', code: 'QMP_PROTOCOL', violation });
    expect(heard).toEqual([]);
  });

  it('drops a line longer than the limit, reports it, and reads the next line normally', async () => {
    const { seen } = await afterBadLines([`{"event": "${'x'.repeat(5000)}`, `${'y'.repeat(5000)}"}\n`, `${JSON.stringify(event('STOP'))}\n`], 4096);
    expect(seen.map((e) => e.violation)).toEqual(['line-too-long']);
  });

  it('fails the command whose error reply is malformed instead of leaving it to time out', async () => {
    const server = await serve((cmd, conn) => (cmd.execute === 'qmp_capabilities' ? conn.reply(okReply(cmd.id)) : conn.reply({ error: 'bad', id: cmd.id })));
    const client = await connect(server);
    const seen = violations(client);
    const err = await client.execute('stop', undefined, { timeoutMs: 5_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(QmpProtocolError);
    expect(err.violation).toBe('unexpected-shape');
    expect(seen).toHaveLength(1);
  });

  it('handles CRLF line ends, blank lines and lines split across many writes', async () => {
    const server = await serve();
    const client = await connect(server);
    const heard: string[] = [];
    client.on('event', (e) => heard.push(e.event));
    const conn = server.connections[0];
    const text = `\r\n${JSON.stringify(event('STOP'))}\r\n\n${JSON.stringify(event('RESUME'))}\n`;
    for (const ch of text) {
      conn?.raw(ch);
      await sleep(0);
    }
    await expect(client.execute('query-status')).resolves.toEqual({});
    expect(heard).toEqual(['STOP', 'RESUME']);
  });

  it('never throws on arbitrary lines, and keeps answering (property)', async () => {
    const server = await serve();
    const client = await connect(server);
    const conn = server.connections[0];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), { maxLength: 8 }), async (lines) => {
        // The ids of our own commands are small integers; keep random replies away from them.
        const safe = lines.map((l) => l.replaceAll('\n', ' ')).filter((l) => !/"id"/.test(l));
        conn?.raw(safe.map((l) => `${l}\n`).join(''));
        await expect(client.execute('query-status')).resolves.toEqual({});
      }),
      { numRuns: 60 },
    );
    expect(client.isOpen).toBe(true);
  });
});
