/**
 * The second half of a start's fold (fold-partition.ts), on a worker thread: the messages of its
 * half go to it packed in pages (their bytes in one transferred buffer), and it answers with the
 * fold of that half as a snapshot. At most `PAGES_IN_FLIGHT` pages wait for it: a fold never
 * holds more of the log in memory than that, however long the log.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FoldSnapshot, StoredMessage } from '@xenops/core';
import type { HalfTasks } from './fold-partition.js';

const PAGE_MESSAGES = 1024;
const PAGES_IN_FLIGHT = 8;
/** A page's first byte buffer; one that a message does not fit grows to hold it. */
const PAGE_BYTES = 1 << 20;

/**
 * Messages packed for `postMessage`: their seqs, offsets and data in buffers that go to the worker
 * and come back with its answer (moved, never copied), so a long fold allocates a few pages, not
 * one per page sent.
 */
export interface PackedPage {
  count: number;
  readonly seqs: Float64Array;
  readonly streams: string[];
  /** `offsets[i]..offsets[i + 1]` is message i's data in `bytes`. */
  readonly offsets: Uint32Array;
  bytes: Uint8Array;
}

/** What the worker answers once it has folded every page. */
export interface HalfFold extends HalfTasks {
  readonly snapshot: FoldSnapshot;
}

export type ToHelper = { readonly page: PackedPage } | { readonly finish: true };
export type FromHelper = { readonly folded: PackedPage } | { readonly done: HalfFold } | { readonly error: string };

export function emptyPage(bytes = PAGE_BYTES): PackedPage {
  return { count: 0, seqs: new Float64Array(PAGE_MESSAGES), streams: [], offsets: new Uint32Array(PAGE_MESSAGES + 1), bytes: new Uint8Array(bytes) };
}

/** Adds a message to a page; false when the page is full (nothing added). */
export function addToPage(page: PackedPage, m: StoredMessage): boolean {
  const i = page.count;
  if (i === PAGE_MESSAGES) return false;
  const at = page.offsets[i]!;
  const end = at + m.data.byteLength;
  if (end > page.bytes.byteLength) {
    if (i > 0) return false;
    page.bytes = new Uint8Array(Math.max(end, page.bytes.byteLength * 2));
  }
  page.bytes.set(m.data, at);
  page.seqs[i] = m.seq;
  page.streams[i] = m.stream;
  page.offsets[i + 1] = end;
  page.count = i + 1;
  return true;
}

/** A page emptied for reuse. */
export function clearPage(page: PackedPage): PackedPage {
  page.count = 0;
  page.streams.length = 0;
  return page;
}

/** The buffers a page moves with. */
export function transferOf(page: PackedPage): ArrayBuffer[] {
  return [page.seqs.buffer as ArrayBuffer, page.offsets.buffer as ArrayBuffer, page.bytes.buffer as ArrayBuffer];
}

/** A page's messages; their data are views of the page's bytes, valid until the page is reused. */
export function* unpackPage({ count, seqs, streams, offsets, bytes }: PackedPage): Generator<StoredMessage> {
  for (let i = 0; i < count; i++) yield { seq: seqs[i]!, stream: streams[i]!, data: bytes.subarray(offsets[i]!, offsets[i + 1]!) };
}

/** The worker's script: built JavaScript next to this module (under the test runner: in `dist/`). */
function workerScript(): URL {
  const here = new URL(import.meta.url);
  const source = /^(.*)\/src\/(.*)\.ts$/.exec(here.pathname);
  const base = source ? new URL(`${source[1]}/dist/${source[2]}.js`, here) : here;
  return new URL('./fold-helper-worker.js', base);
}

export class FoldHelper {
  private readonly worker: Worker;
  private page = emptyPage();
  /** Pages the worker gave back, to fill again. */
  private readonly free: PackedPage[] = [];
  private inFlight = 0;
  private credit?: () => void;
  private result?: { resolve: (r: HalfFold) => void; reject: (e: Error) => void };
  private failure?: Error;

  /** Undefined when the worker's script is not built (sources run without a build). */
  static start(): FoldHelper | undefined {
    const script = workerScript();
    return existsSync(fileURLToPath(script)) ? new FoldHelper(script) : undefined;
  }

  private constructor(script: URL) {
    this.worker = new Worker(script);
    this.worker.on('message', (m: FromHelper) => {
      if ('folded' in m) {
        this.inFlight--;
        this.free.push(clearPage(m.folded));
        this.wake();
      } else if ('done' in m) this.result?.resolve(m.done);
      else this.fail(new Error(m.error));
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the fold's worker exited (${code})`)));
  }

  /**
   * Queues a message of the worker's half if its page has room (its data is copied: the caller's
   * buffer may be reused); false when it has none: `send` it then.
   */
  offer(m: StoredMessage): boolean {
    return addToPage(this.page, m);
  }

  /**
   * Queues a message `offer` refused: sends the full page once the worker can take it, then starts
   * the next page with the message (an empty page takes any message: it grows to hold it).
   */
  async send(m: StoredMessage): Promise<void> {
    await this.flush();
    addToPage(this.page, m);
  }

  /** Every message sent is folded: the worker's half as a snapshot. */
  async finish(): Promise<HalfFold> {
    await this.flush();
    if (this.failure) throw this.failure;
    const done = new Promise<HalfFold>((resolve, reject) => (this.result = { resolve, reject }));
    this.worker.postMessage({ finish: true } satisfies ToHelper);
    return done;
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private async flush(): Promise<void> {
    while (this.inFlight >= PAGES_IN_FLIGHT && !this.failure) await new Promise<void>((resolve) => (this.credit = resolve));
    if (this.failure) throw this.failure;
    if (this.page.count === 0) return;
    const page = this.page;
    this.page = this.free.pop() ?? emptyPage();
    this.inFlight++;
    this.worker.postMessage({ page } satisfies ToHelper, transferOf(page));
  }

  private wake(): void {
    const c = this.credit;
    this.credit = undefined;
    c?.();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.result?.reject(this.failure);
    this.wake();
  }
}
