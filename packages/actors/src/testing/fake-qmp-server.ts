import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A stand-in QMP server on a Unix socket, for the protocol unit tests: it sends a greeting, then
 * hands each received command to `onCommand`, which answers with `reply` (any JSON) or `raw`
 * (any bytes, for malformed input). Integration tests use real QEMU instead.
 */
export interface FakeQmpConnection {
  socket: Socket;
  /** Commands received, parsed. */
  received: Array<{ execute: string; arguments?: unknown; id?: unknown }>;
  reply(message: unknown): void;
  raw(text: string): void;
}

export interface FakeQmpServer {
  path: string;
  connections: FakeQmpConnection[];
  /** Starts listening (call later than `create` to test connect retries). */
  listen(): Promise<void>;
  close(): Promise<void>;
}

export const GREETING = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'fake' }, capabilities: ['oob'] },
};

export const okReply = (id: unknown, value: unknown = {}) => ({ return: value, id });

export function fakeQmpServer(
  onCommand: (cmd: { execute: string; arguments?: unknown; id?: unknown }, conn: FakeQmpConnection) => void = (cmd, conn) => conn.reply(okReply(cmd.id)),
  options: { greeting?: string | null } = {},
): FakeQmpServer {
  const dir = mkdtempSync(join(tmpdir(), 'fake-qmp-'));
  const path = join(dir, 'qmp.sock');
  const connections: FakeQmpConnection[] = [];
  let server: Server | undefined;
  const accept = (socket: Socket) => {
    const conn: FakeQmpConnection = {
      socket,
      received: [],
      reply: (message) => socket.write(`${JSON.stringify(message)}\n`),
      raw: (text) => socket.write(text),
    };
    connections.push(conn);
    socket.on('error', () => undefined);
    if (options.greeting !== null) conn.raw(options.greeting ?? `${JSON.stringify(GREETING)}\n`);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const cmd = JSON.parse(line);
        conn.received.push(cmd);
        onCommand(cmd, conn);
      }
    });
  };
  return {
    path,
    connections,
    listen: () =>
      new Promise((resolve) => {
        server = createServer(accept);
        server.listen(path, () => resolve());
      }),
    close: async () => {
      for (const c of connections) c.socket.destroy();
      if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
