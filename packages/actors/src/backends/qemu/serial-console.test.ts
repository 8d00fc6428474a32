import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SerialClosedError, SerialConnectError, SerialTimeoutError } from './errors.js';
import { SerialConsole } from './serial-console.js';

// The console's own behaviour against a plain socket; the tiny-guest tests drive it against QEMU.
let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function guestSide(): Promise<{ path: string; peer: Promise<Socket>; received: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'serial-'));
  const path = join(dir, 'serial.sock');
  let received = '';
  let server: Server;
  const peer = new Promise<Socket>((resolve) => {
    server = createServer((s) => {
      s.on('data', (d) => (received += d.toString()));
      s.on('error', () => undefined);
      cleanups.push(() => void s.destroy());
      resolve(s);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())), () => rmSync(dir, { recursive: true, force: true }));
  return { path, peer, received: () => received };
}

async function open(path: string): Promise<SerialConsole> {
  const c = await SerialConsole.connect(path, { timeoutMs: 2_000 });
  cleanups.push(() => c.close());
  return c;
}

describe('SerialConsole', () => {
  it('finds a line that arrived before the wait, consumes lines in order, and strips CR', async () => {
    const g = await guestSide();
    const con = await open(g.path);
    (await g.peer).write('boot noise\r\nxenops-guest ready\r\nxenops-guest heartbeat 1\r\n');
    await new Promise((r) => setTimeout(r, 50));
    await expect(con.waitForLine('ready')).resolves.toBe('xenops-guest ready');
    await expect(con.waitForLine(/heartbeat (\d+)/)).resolves.toBe('xenops-guest heartbeat 1');
    // "ready" was consumed: a second wait needs a new one.
    const next = con.waitForLine('ready', { timeoutMs: 2_000 });
    (await g.peer).write('xenops-guest ready\n');
    await expect(next).resolves.toBe('xenops-guest ready');
  });

  it('skipPending ignores everything received so far', async () => {
    const g = await guestSide();
    const con = await open(g.path);
    (await g.peer).write('xenops-guest blk vda 1\n');
    await new Promise((r) => setTimeout(r, 50));
    con.skipPending();
    await expect(con.waitForLine('blk', { timeoutMs: 100 })).rejects.toBeInstanceOf(SerialTimeoutError);
  });

  it('times out with the last lines it saw', async () => {
    const g = await guestSide();
    const con = await open(g.path);
    (await g.peer).write('Kernel panic - not syncing\n');
    const err = await con.waitForLine('ready', { timeoutMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(SerialTimeoutError);
    expect(err.code).toBe('SERIAL_TIMEOUT');
    expect(err.recentLines).toEqual(['Kernel panic - not syncing']);
  });

  it('sends a line with a newline', async () => {
    const g = await guestSide();
    const con = await open(g.path);
    await con.send('lsblk');
    await new Promise((r) => setTimeout(r, 50));
    expect(g.received()).toBe('lsblk\n');
  });

  it('fails a wait with SerialClosedError when QEMU closes the console', async () => {
    const g = await guestSide();
    const con = await open(g.path);
    const waiting = con.waitForLine('ready', { timeoutMs: 5_000 });
    (await g.peer).destroy();
    await expect(waiting).rejects.toBeInstanceOf(SerialClosedError);
    await expect(con.send('x')).rejects.toBeInstanceOf(SerialClosedError);
  });

  it('connect fails with SerialConnectError when there is no console', async () => {
    const err = await SerialConsole.connect(join(tmpdir(), 'no-such-dir-xenops', 'serial.sock'), { timeoutMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(SerialConnectError);
    expect(err.code).toBe('SERIAL_CONNECT_FAILED');
  });
});
