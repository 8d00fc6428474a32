import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  QmpAbortedError,
  QmpClosedError,
  QmpCommandError,
  QmpConnectError,
  QmpConnectionLostError,
  QmpProtocolError,
  QmpTimeoutError,
  type QmpProtocolViolation,
} from './errors.js';
import { LineSplitter } from './line-splitter.js';
import type { ExecuteOptions, QmpCommandName, QmpCommands, QmpConnectOptions, QmpEvent, QmpGreeting } from './types.js';
import { connectUnixSocket } from './unix-socket.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_INTERVAL_MS = 20;
const DEFAULT_EXECUTE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_LINE_BYTES = 16 << 20;
/** Ids of commands whose caller gave up, so their late replies are expected, not violations. */
const MAX_ABANDONED_IDS = 1024;

export interface QmpClientEvents {
  /** An asynchronous QMP event (SHUTDOWN, RESET, STOP, ...). */
  event: [QmpEvent];
  /** QEMU sent a line QMP does not allow; it was dropped and the connection goes on. */
  'protocol-error': [QmpProtocolError];
  /** The connection ended: with the error when it was lost, undefined when `close` ended it. */
  close: [QmpConnectionLostError | undefined];
}

interface PendingCommand {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** Clears the timer and the abort listener. */
  settle: () => void;
}

type ArgsOf<C extends QmpCommandName> = QmpCommands[C]['args'] extends undefined
  ? [args?: undefined, options?: ExecuteOptions]
  : [args: QmpCommands[C]['args'], options?: ExecuteOptions];

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const excerpt = (line: string) => (line.length > 200 ? `${line.slice(0, 200)}…` : line);

/**
 * One QMP connection (QEMU Machine Protocol: line-delimited JSON over a Unix socket). Hand-written:
 * the protocol is a greeting, `qmp_capabilities`, then commands carrying an `id` that QEMU echoes
 * in their reply, interleaved with events; no maintained npm client matches that exactly.
 *
 * Lifecycle: `QmpClient.connect` (waits for the socket, reads the greeting, negotiates) → commands
 * and events → `close` (or the `close` event with QmpConnectionLostError when QEMU goes away).
 * Bad input from QEMU never throws out of the socket handler: it is reported as `protocol-error`.
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  private readonly pending = new Map<number, PendingCommand>();
  private readonly abandoned = new Set<number>();
  private nextId = 1;
  private state: 'greeting' | 'open' | 'closed' = 'greeting';
  private closeError: QmpConnectionLostError | QmpClosedError | undefined;
  private socketError: Error | undefined;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | undefined;
  private readonly ended: Promise<void>;
  private _greeting: QmpGreeting | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
    maxLineBytes: number,
  ) {
    super();
    const splitter = new LineSplitter(
      maxLineBytes,
      (line) => this.onLine(line),
      (head) => this.violation('line-too-long', head),
    );
    socket.on('data', (chunk: Buffer) => splitter.push(chunk));
    socket.on('error', (err) => {
      this.socketError = err;
    });
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => this.onSocketClosed());
  }

  /**
   * Connects, retrying while the socket is missing or refuses (bounded by `timeoutMs`), reads the
   * greeting and leaves capabilities negotiation. Rejects with QmpConnectError.
   */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let socket: Socket;
    try {
      socket = await connectUnixSocket(path, { timeoutMs, retryIntervalMs: options.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS, signal: options.signal });
    } catch (err) {
      throw new QmpConnectError(path, (err as Error).message, { cause: (err as Error).cause ?? err });
    }
    const client = new QmpClient(socket, path, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    try {
      const left = () => Math.max(1, deadline - Date.now());
      client._greeting = await client.awaitGreeting(left(), options.signal);
      await client.execute('qmp_capabilities', {}, { timeoutMs: left(), signal: options.signal });
      return client;
    } catch (err) {
      await client.close();
      throw new QmpConnectError(path, (err as Error).message, { cause: err });
    }
  }

  /** QEMU's greeting (version and capabilities). */
  get greeting(): QmpGreeting {
    if (!this._greeting) throw new QmpClosedError(this.path);
    return this._greeting;
  }

  get isOpen(): boolean {
    return this.state !== 'closed';
  }

  /** Resolves when the socket has closed, for whatever reason. */
  whenClosed(): Promise<void> {
    return this.ended;
  }

  /**
   * Runs a command and resolves with its `return` value. Rejects with QmpCommandError (QEMU said
   * no), QmpTimeoutError, QmpAbortedError, QmpConnectionLostError or QmpClosedError.
   */
  execute<C extends QmpCommandName>(command: C, ...rest: ArgsOf<C>): Promise<QmpCommands[C]['result']>;
  execute(command: string, args?: Record<string, unknown>, options?: ExecuteOptions): Promise<unknown>;
  execute(command: string, args?: Record<string, unknown>, options: ExecuteOptions = {}): Promise<unknown> {
    if (this.closeError) return Promise.reject(this.closeError);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new QmpAbortedError(command, { cause: signal.reason }));
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXECUTE_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const giveUp = (err: Error) => {
        if (!this.pending.delete(id)) return;
        this.abandon(id);
        entry.settle();
        reject(err);
      };
      const timer = setTimeout(() => giveUp(new QmpTimeoutError(command, timeoutMs)), timeoutMs);
      const onAbort = () => giveUp(new QmpAbortedError(command, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      const entry: PendingCommand = {
        command,
        resolve,
        reject,
        settle: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      this.pending.set(id, entry);
      const message = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /**
   * The next event called `name` (and matching `predicate`), counting from this call: call it
   * before the command that causes the event. Rejects with QmpTimeoutError after `timeoutMs`
   * (default 30 s), QmpAbortedError, or the error that closed the connection.
   */
  waitForEvent(name: string, options: { predicate?: (e: QmpEvent) => boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpEvent> {
    const what = `wait for event ${name}`;
    if (this.closeError) return Promise.reject(this.closeError);
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXECUTE_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name || (options.predicate && !options.predicate(e))) return;
        done();
        resolve(e);
      };
      const onClose = () => {
        done();
        reject(this.closeError ?? new QmpClosedError(this.path));
      };
      const onAbort = () => {
        done();
        reject(new QmpAbortedError(what, { cause: options.signal?.reason }));
      };
      const timer = setTimeout(() => {
        done();
        reject(new QmpTimeoutError(what, timeoutMs));
      }, timeoutMs);
      this.on('event', onEvent);
      this.on('close', onClose);
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Events from now on, as an async iterator that ends when the connection closes or `signal`
   * aborts. Events are queued while the consumer is busy.
   */
  events(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    let finished = this.state === 'closed' || options.signal?.aborted === true;
    const onEvent = (e: QmpEvent) => {
      queue.push(e);
      wake?.();
    };
    const finish = () => {
      finished = true;
      this.off('event', onEvent);
      this.off('close', finish);
      options.signal?.removeEventListener('abort', finish);
      wake?.();
    };
    if (!finished) {
      this.on('event', onEvent);
      this.on('close', finish);
      options.signal?.addEventListener('abort', finish, { once: true });
    }
    const iterator: AsyncIterableIterator<QmpEvent> = {
      next: async () => {
        while (queue.length === 0 && !finished) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const value = queue.shift();
        return value ? { value, done: false } : { value: undefined, done: true };
      },
      return: async () => {
        finish();
        queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Ends the connection; pending commands fail with QmpClosedError. Idempotent. */
  async close(): Promise<void> {
    if (this.state !== 'closed') {
      this.closeError = new QmpClosedError(this.path);
      this.shutDown();
      this.emit('close', undefined);
    }
    this.socket.destroy();
    await this.ended;
  }

  private awaitGreeting(timeoutMs: number, signal: AbortSignal | undefined): Promise<QmpGreeting> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.greetingWaiter = undefined;
      };
      const onAbort = () => {
        done();
        reject(new QmpAbortedError('greeting', { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        done();
        reject(new QmpTimeoutError('greeting', timeoutMs));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.greetingWaiter = {
        resolve: (g) => {
          done();
          resolve(g);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
    });
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (err) {
      return this.violation('not-json', line, err);
    }
    if (this.state === 'greeting') return this.onGreeting(message, line);
    if (!isRecord(message)) return this.violation('unexpected-shape', line);
    if ('event' in message) return this.onEvent(message, line);
    if ('return' in message || 'error' in message) return this.onReply(message, line);
    this.violation('unexpected-shape', line);
  }

  private onGreeting(message: unknown, line: string): void {
    const qmp = isRecord(message) ? message.QMP : undefined;
    if (!isRecord(qmp) || !isRecord(qmp.version) || !Array.isArray(qmp.capabilities)) {
      const err = new QmpProtocolError('bad-greeting', excerpt(line));
      this.greetingWaiter?.reject(err);
      this.emit('protocol-error', err);
      return;
    }
    this.state = 'open';
    this.greetingWaiter?.resolve(message as unknown as QmpGreeting);
  }

  private onEvent(message: Record<string, unknown>, line: string): void {
    const { event, data, timestamp } = message;
    const validTimestamp = isRecord(timestamp) && typeof timestamp.seconds === 'number' && typeof timestamp.microseconds === 'number';
    if (typeof event !== 'string' || (data !== undefined && !isRecord(data)) || !validTimestamp) return this.violation('unexpected-shape', line);
    this.emit('event', message as unknown as QmpEvent);
  }

  private onReply(message: Record<string, unknown>, line: string): void {
    if (!('id' in message)) return this.violation('missing-id', line);
    const id = message.id;
    const entry = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!entry) {
      if (typeof id === 'number' && this.abandoned.delete(id)) return;
      return this.violation('unknown-id', line);
    }
    this.pending.delete(id as number);
    entry.settle();
    if ('error' in message) {
      const error = message.error;
      if (!isRecord(error) || typeof error.class !== 'string' || typeof error.desc !== 'string') {
        const err = new QmpProtocolError('unexpected-shape', excerpt(line));
        entry.reject(err);
        this.emit('protocol-error', err);
        return;
      }
      entry.reject(new QmpCommandError(entry.command, error.class, error.desc));
      return;
    }
    entry.resolve(message.return);
  }

  private violation(kind: QmpProtocolViolation, line: string, cause?: unknown): void {
    const err = new QmpProtocolError(kind, excerpt(line), cause === undefined ? undefined : { cause });
    if (this.state === 'greeting' && this.greetingWaiter) {
      this.greetingWaiter.reject(err);
    }
    this.emit('protocol-error', err);
  }

  private abandon(id: number): void {
    this.abandoned.add(id);
    if (this.abandoned.size > MAX_ABANDONED_IDS) {
      const oldest = this.abandoned.values().next().value as number;
      this.abandoned.delete(oldest);
    }
  }

  private onSocketClosed(): void {
    if (this.state === 'closed') return;
    const lost = new QmpConnectionLostError(this.path, this.socketError ? { cause: this.socketError } : undefined);
    this.closeError = lost;
    this.greetingWaiter?.reject(lost);
    this.shutDown();
    this.emit('close', lost);
  }

  private shutDown(): void {
    this.state = 'closed';
    const err = this.closeError ?? new QmpClosedError(this.path);
    for (const entry of this.pending.values()) {
      entry.settle();
      entry.reject(err);
    }
    this.pending.clear();
  }
}
