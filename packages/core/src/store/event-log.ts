/**
 * The append-only event log: one totally ordered sequence of messages, each belonging to one
 * stream (an aggregate such as `vm/<id>`). A message is one decision: all the events it holds
 * share its seq.
 *
 * Implementations: embedded (SQLite, `embedded/`) and NATS JetStream (`nats/`). Both pass the
 * contract suite in `store/contract.test-suite.ts`.
 */

export interface AppendRequest {
  /** Aggregate stream key, any non-empty string (implementations escape it as needed). */
  readonly stream: string;
  /** The encoded message. */
  readonly data: Uint8Array;
  /**
   * Optimistic concurrency: the seq of the last message of `stream` the writer knows of
   * (0 = the stream must be empty). Omitted: no check.
   */
  readonly expectedLastSeq?: number;
  /**
   * Idempotency key. Appending again with the same id (e.g. retrying a timed-out append) stores
   * nothing new and returns the original seq. Ids are remembered for at least two minutes.
   */
  readonly messageId?: string;
}

export interface StoredMessage {
  readonly seq: number;
  readonly stream: string;
  readonly data: Uint8Array;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface EventLog {
  /** Appends one message; resolves with its seq once it is durable. */
  append(req: AppendRequest): Promise<number>;
  /** Seq of the newest message, 0 when the log is empty. */
  head(): Promise<number>;
  /**
   * Seq of the oldest retained message: 1 until the log is truncated, `head + 1` when it holds
   * nothing. Messages before it are gone (retention); a fold snapshot must cover them.
   */
  firstSeq(): Promise<number>;
  /**
   * Retention: deletes every message with seq < `seq` (never the newest one). Seqs are never
   * reused. The caller must hold a fold snapshot at or after `seq - 1` first.
   */
  truncateBefore(seq: number): Promise<void>;
  /** Seq of the newest message of `stream`, 0 when it has none. */
  lastSeqOf(stream: string): Promise<number>;
  /** Every message with `afterSeq < seq <= toSeq` (toSeq defaults to the head at call time), ascending. */
  read(afterSeq: number, toSeq?: number): AsyncIterable<StoredMessage>;
  /**
   * The messages `read` gives, handed over a page at a time (never an empty page): a long read
   * (a start folding the whole log) then pays one await per page, not one per message.
   */
  readPages(afterSeq: number, toSeq?: number): AsyncIterable<readonly StoredMessage[]>;
  /** The messages of one stream with seq > afterSeq, ascending. */
  readStream(stream: string, afterSeq?: number): AsyncIterable<StoredMessage>;
  /**
   * Delivers every message with seq > afterSeq, in order and without gaps: first the stored ones,
   * then new ones as they are appended (by any process sharing the log). The handler is awaited
   * before the next message is delivered.
   */
  tail(afterSeq: number, handler: (m: StoredMessage) => void | Promise<void>): Subscription;
  /**
   * Why an append cannot succeed right now (e.g. the disk is full), or undefined; `/healthz`
   * reports it. Optional: a store without the notion leaves it out.
   */
  writeProblem?(): Promise<string | undefined>;
  /**
   * When the newest message was stored (ms since the epoch), by any writer the store knows of, or
   * undefined when it does not know (e.g. nothing appended since this process started). Optional.
   */
  lastAppendTime?(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** The messages of `pages`, one by one (a store's `read` from its `readPages`). */
export async function* messagesOfPages(pages: AsyncIterable<readonly StoredMessage[]>): AsyncGenerator<StoredMessage> {
  for await (const page of pages) yield* page;
}

/** The expected last seq of a stream did not match: someone else wrote to it. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly stream: string,
    readonly expectedLastSeq: number,
  ) {
    super(`concurrent write to stream ${stream}: expected last seq ${expectedLastSeq}`);
  }
}

/** A message bigger than the store takes in one write (NATS: the server's `max_payload`): nothing was written. */
export class AppendTooLargeError extends Error {
  override readonly name = 'AppendTooLargeError';
  constructor(
    readonly stream: string,
    readonly size: number,
    readonly maxPayload: number,
  ) {
    super(`a message of ${size} bytes to ${stream} exceeds the store's limit of ${maxPayload} bytes`);
  }
}

/** The store cannot be reached or refused the operation for a reason other than concurrency. */
export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The store refused the operation to these credentials (a NATS permissions violation): retrying
 * will not help, and nothing was written.
 */
export class StorePermissionError extends StoreUnavailableError {
  override readonly name = 'StorePermissionError';
  readonly code = 'PERMISSION_VIOLATION';
  constructor(
    message: string,
    /** What the server refused: `publish` or `subscription`, and the subject. */
    readonly operation: string,
    readonly subject: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
