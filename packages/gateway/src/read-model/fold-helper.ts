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

/** Messages packed for `postMessage`: their data in one buffer, moved to the worker, not copied. */
export interface PackedPage {
  readonly seqs: Float64Array;
  readonly streams: string[];
  /** `offsets[i]..offsets[i + 1]` is message i's data in `bytes`. */
  readonly offsets: Uint32Array;
  readonly bytes: Uint8Array;
}

/** What the worker answers once it has folded every page. */
export interface HalfFold extends HalfTasks {
  readonly snapshot: FoldSnapshot;
}

export type ToHelper = { readonly page: PackedPage } | { readonly finish: true };
export type FromHelper = { readonly ack: true } | { readonly done: HalfFold } | { readonly error: string };

export function packPage(messages: readonly StoredMessage[]): PackedPage {
  const seqs = new Float64Array(messages.length);
  const offsets = new Uint32Array(messages.length + 1);
  const streams: string[] = [];
  let size = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    seqs[i] = m.seq;
    streams.push(m.stream);
    offsets[i] = size;
    size += m.data.byteLength;
  }
  offsets[messages.length] = size;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < messages.length; i++) bytes.set(messages[i]!.data, offsets[i]!);
  return { seqs, streams, offsets, bytes };
}

export function* unpackPage({ seqs, streams, offsets, bytes }: PackedPage): Generator<StoredMessage> {
  for (let i = 0; i < seqs.length; i++) yield { seq: seqs[i]!, stream: streams[i]!, data: bytes.subarray(offsets[i]!, offsets[i + 1]!) };
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
  private batch: StoredMessage[] = [];
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
      if ('ack' in m) {
        this.inFlight--;
        this.wake();
      } else if ('done' in m) this.result?.resolve(m.done);
      else this.fail(new Error(m.error));
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the fold's worker exited (${code})`)));
  }

  /** Queues a message of the worker's half; resolves when the worker can take more. */
  async send(m: StoredMessage): Promise<void> {
    this.batch.push(m);
    if (this.batch.length < PAGE_MESSAGES) return;
    await this.flush();
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
    if (this.batch.length === 0) return;
    const page = packPage(this.batch);
    this.batch = [];
    this.inFlight++;
    this.worker.postMessage({ page } satisfies ToHelper, [page.seqs.buffer as ArrayBuffer, page.offsets.buffer as ArrayBuffer, page.bytes.buffer as ArrayBuffer]);
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
