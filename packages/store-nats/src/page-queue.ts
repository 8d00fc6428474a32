/**
 * Items pushed by a callback (a consumer's messages), read back as pages by one async reader. A
 * page is handed over when it is full, when the queue ends, or, while the reader waits for one,
 * once the I/O turn that pushed into it is over: a reader that keeps up gets what has come,
 * one that falls behind gets full pages.
 */
export class PageQueue<T> implements AsyncIterable<T[]> {
  private page: T[] = [];
  private readonly ready: T[][] = [];
  private done = false;
  private failure?: Error;
  private wake?: () => void;
  private handOverScheduled = false;

  constructor(private readonly pageSize: number) {
    if (!(pageSize >= 1)) throw new RangeError(`page size must be at least 1, not ${pageSize}`);
  }

  /** True once `end` or `fail` was called: later pushes are dropped. */
  get ended(): boolean {
    return this.done;
  }

  push(item: T): void {
    if (this.done) return;
    this.page.push(item);
    if (this.page.length >= this.pageSize) this.handOver();
    else if (this.wake && !this.handOverScheduled) {
      this.handOverScheduled = true;
      setImmediate(() => {
        this.handOverScheduled = false;
        this.handOver();
      });
    }
  }

  /** No more items: the reader gets what is queued, then the end. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.handOver();
  }

  /** The reader gets what is queued, then `error`. Ignored once ended. */
  fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T[]> {
    for (;;) {
      const page = this.ready.shift();
      if (page) yield page;
      else if (this.failure) throw this.failure;
      else if (this.done) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private handOver(): void {
    if (this.page.length > 0) {
      this.ready.push(this.page);
      this.page = [];
    }
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
