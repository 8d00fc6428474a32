import type { Socket } from 'node:net';
import { SerialClosedError, SerialConnectError, SerialTimeoutError } from './errors.js';
import { LineSplitter } from './line-splitter.js';
import type { SerialWaitOptions } from './types.js';
import { connectUnixSocket } from './unix-socket.js';

const DEFAULT_WAIT_MS = 30_000;
/** Lines kept for `waitForLine` to look back at; older ones are dropped. */
const MAX_KEPT_LINES = 10_000;
const MAX_LINE_BYTES = 64 << 10;

interface Waiter {
  test: (line: string) => boolean;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
}

/**
 * A guest's serial console over QEMU's Unix socket chardev, line by line, expect-style:
 * `waitForLine` consumes lines in order, so a line that arrived before the call still counts
 * (no race between sending a command and waiting for its answer). QEMU's socket chardev serves one
 * client at a time; whatever the guest printed while nobody was connected is only in serial.log.
 */
export class SerialConsole {
  private readonly lines: string[] = [];
  /** Index in `lines` of the first line not yet consumed by `waitForLine`. */
  private cursor = 0;
  private waiter: Waiter | undefined;
  private closed = false;
  private readonly ended: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    const splitter = new LineSplitter(
      MAX_LINE_BYTES,
      (line) => this.onLine(line),
      (head) => this.onLine(head),
    );
    socket.on('data', (chunk: Buffer) => splitter.push(chunk));
    socket.on('error', () => undefined); // the close that follows is what matters
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.closed = true;
      this.waiter?.reject(new SerialClosedError(this.path));
      this.waiter = undefined;
    });
  }

  /** Connects, retrying while the socket does not exist yet (bounded by `timeoutMs`, default 10 s). */
  static async connect(path: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<SerialConsole> {
    try {
      const socket = await connectUnixSocket(path, { timeoutMs: options.timeoutMs ?? 10_000, retryIntervalMs: 20, signal: options.signal });
      return new SerialConsole(socket, path);
    } catch (err) {
      throw new SerialConnectError(path, (err as Error).message, { cause: (err as Error).cause ?? err });
    }
  }

  /**
   * The first unconsumed line matching `pattern` (a RegExp, or a string the line must contain);
   * it and every line before it are consumed. Rejects with SerialTimeoutError (with the last lines
   * seen) or SerialClosedError.
   */
  waitForLine(pattern: RegExp | string, options: SerialWaitOptions = {}): Promise<string> {
    if (this.waiter) return Promise.reject(new Error('SerialConsole: one waitForLine at a time'));
    const test = typeof pattern === 'string' ? (l: string) => l.includes(pattern) : (l: string) => pattern.test(l);
    for (; this.cursor < this.lines.length; this.cursor++) {
      const line = this.lines[this.cursor] as string;
      if (test(line)) {
        this.cursor++;
        return Promise.resolve(line);
      }
    }
    if (this.closed) return Promise.reject(new SerialClosedError(this.path));
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.waiter = undefined;
      };
      const onAbort = () => {
        done();
        reject(options.signal?.reason);
      };
      const timer = setTimeout(() => {
        done();
        reject(new SerialTimeoutError(String(pattern), timeoutMs, this.recentLines(20)));
      }, timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        test,
        resolve: (line) => {
          done();
          resolve(line);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
    });
  }

  /** Consumes every line received so far: the next `waitForLine` sees only newer ones. */
  skipPending(): void {
    this.cursor = this.lines.length;
  }

  /** Types a line on the console (a newline is added). */
  async send(line: string): Promise<void> {
    if (this.closed) throw new SerialClosedError(this.path);
    await new Promise<void>((resolve, reject) =>
      this.socket.write(`${line}\n`, (err) => (err ? reject(new SerialClosedError(this.path, { cause: err })) : resolve())),
    );
  }

  /** The last `n` lines received (consumed or not). */
  recentLines(n: number): string[] {
    return this.lines.slice(-n);
  }

  async close(): Promise<void> {
    this.socket.destroy();
    await this.ended;
  }

  private onLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > MAX_KEPT_LINES) {
      const drop = this.lines.length - MAX_KEPT_LINES;
      this.lines.splice(0, drop);
      this.cursor = Math.max(0, this.cursor - drop);
    }
    const w = this.waiter;
    if (w && this.cursor === this.lines.length - 1) {
      this.cursor++;
      if (w.test(line)) w.resolve(line);
    }
  }
}
