import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface UnixConnectOptions {
  timeoutMs: number;
  retryIntervalMs: number;
  signal?: AbortSignal;
}

/** Internal: why a connection could not be made; QMP and the serial console wrap it in their own error. */
export class UnixConnectFailure extends Error {
  override readonly name = 'UnixConnectFailure';
}

/** Not there yet (QEMU creates its listening sockets a few ms after it starts). */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

function attempt(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const onError = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** Connects to a Unix socket that may not exist yet, retrying until `timeoutMs`. */
export async function connectUnixSocket(path: string, options: UnixConnectOptions): Promise<Socket> {
  const deadline = Date.now() + options.timeoutMs;
  const abandoned = () => new UnixConnectFailure('abandoned', { cause: options.signal?.reason });
  for (;;) {
    if (options.signal?.aborted) throw abandoned();
    let last: NodeJS.ErrnoException;
    try {
      return await attempt(path);
    } catch (err) {
      last = err as NodeJS.ErrnoException;
      if (!last.code || !RETRYABLE.has(last.code)) throw new UnixConnectFailure(last.message, { cause: err });
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new UnixConnectFailure(`not reachable within ${options.timeoutMs} ms (${last.message})`, { cause: last });
    try {
      await sleep(Math.min(options.retryIntervalMs, left), undefined, { signal: options.signal });
    } catch {
      throw abandoned();
    }
  }
}
