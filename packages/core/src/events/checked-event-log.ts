/**
 * The log's second wall: an event batch is appended only if the real codec reads it back to
 * itself. Whatever a handler gets wrong (a string protobuf cannot carry, a value the decoder
 * refuses or reads differently), the log stays readable: the write is refused with a typed error
 * before anything is stored, instead of every later replay failing on it.
 */
import type { AppendRequest, EventLog, StoredMessage, Subscription } from '../store/event-log.js';
import type { Stores } from '../store/stores.js';
import { decodeBatch, encodeBatch, type PendingEvent } from './codec.js';
import { rememberVerifiedBatch } from './verified-batches.js';

/** An append refused because its batch does not decode back to the same bytes. Nothing was written. */
export class UndecodableEventError extends Error {
  override readonly name = 'UndecodableEventError';
  readonly code = 'UNDECODABLE_EVENT';
  constructor(
    readonly stream: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`refused to append an event batch to ${stream} that does not decode back to itself: ${detail}`, options);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Throws {@link UndecodableEventError} unless `data` decodes with `decodeBatch` and encoding the
 * decoded events again gives exactly `data`.
 */
export function assertBatchRoundTrips(stream: string, data: Uint8Array): void {
  let decoded: PendingEvent[];
  try {
    decoded = decodeBatch(0, data);
  } catch (e) {
    throw new UndecodableEventError(stream, (e as Error).message.replace(/^seq 0: /, ''), { cause: e });
  }
  if (sameBytes(encodeBatch(decoded), data)) {
    // Decoded once here, read back by every local fold: they need not decode it again.
    rememberVerifiedBatch(data, decoded);
    return;
  }
  throw new UndecodableEventError(stream, differingEvent(data, decoded));
}

/** Names the first event that reads back differently (the slow path of a refusal only). */
function differingEvent(data: Uint8Array, decoded: readonly PendingEvent[]): string {
  const again = encodeBatch(decoded);
  if (decoded.length === 0) return 'it holds no event this version knows';
  for (const event of decoded) {
    const alone = encodeBatch([event]);
    // A batch is its events' length-prefixed encodings in a row: look for this one's in the original.
    if (Buffer.from(data).indexOf(Buffer.from(alone)) < 0) return `${event.body.type} reads back differently`;
  }
  return `it re-encodes to ${again.length} bytes instead of ${data.length}`;
}

/** Told of every append that reached the store: how long it took and whether it was stored (for metrics). */
export type AppendObserver = (stream: string, seconds: number, stored: boolean) => void;

/**
 * An EventLog whose appends pass {@link assertBatchRoundTrips} first; everything else is the inner
 * log's. Being every writer's gate, it is also where an append's latency is seen.
 */
export class CheckedEventLog implements EventLog {
  constructor(
    private readonly inner: EventLog,
    private readonly observeAppend?: AppendObserver,
  ) {}

  append(req: AppendRequest): Promise<number> {
    try {
      assertBatchRoundTrips(req.stream, req.data);
    } catch (e) {
      return Promise.reject(e);
    }
    const observe = this.observeAppend;
    if (!observe) return this.inner.append(req);
    const started = performance.now();
    return this.inner.append(req).then(
      (seq) => {
        observe(req.stream, (performance.now() - started) / 1000, true);
        return seq;
      },
      (e: unknown) => {
        observe(req.stream, (performance.now() - started) / 1000, false);
        throw e;
      },
    );
  }
  head(): Promise<number> {
    return this.inner.head();
  }
  firstSeq(): Promise<number> {
    return this.inner.firstSeq();
  }
  truncateBefore(seq: number): Promise<void> {
    return this.inner.truncateBefore(seq);
  }
  lastSeqOf(stream: string): Promise<number> {
    return this.inner.lastSeqOf(stream);
  }
  read(afterSeq: number, toSeq?: number): AsyncIterable<StoredMessage> {
    return this.inner.read(afterSeq, toSeq);
  }
  readPages(afterSeq: number, toSeq?: number): AsyncIterable<readonly StoredMessage[]> {
    return this.inner.readPages(afterSeq, toSeq);
  }
  readStream(stream: string, afterSeq?: number): AsyncIterable<StoredMessage> {
    return this.inner.readStream(stream, afterSeq);
  }
  tail(afterSeq: number, handler: (m: StoredMessage) => void | Promise<void>): Subscription {
    return this.inner.tail(afterSeq, handler);
  }
  writeProblem(): Promise<string | undefined> {
    return this.inner.writeProblem?.() ?? Promise.resolve(undefined);
  }
  lastAppendTime(): Promise<number | undefined> {
    return this.inner.lastAppendTime?.() ?? Promise.resolve(undefined);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The same stores with the event log behind {@link CheckedEventLog} (every process that appends uses this). */
export function withCheckedAppends<S extends Stores>(stores: S, observeAppend?: AppendObserver): S {
  return { ...stores, log: new CheckedEventLog(stores.log, observeAppend) };
}
