import type { StoredMessage } from './event-log.js';

/** Where a store reports what has nobody else to tell (a failed tail handler, a failed clean-up). */
export type StoreLogger = (line: string) => void;

/** The logger of a store whose owner injects none: one line on stderr. */
export const stderrStoreLogger: StoreLogger = (line) => {
  process.stderr.write(`[xenops store] ${line}\n`);
};

/** An error as one line of a log (its stack, if any, is the owner's to print). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Hands a tail's messages to its handler, one at a time, and knows whether one is being handled.
 *
 * `close()` of a tail waits for its loop to end, unless a handler is running: that handler may be
 * the caller (closing from inside the handler is allowed), and waiting would wait for itself. So
 * a close during a delivery stops later deliveries and returns without waiting for the running
 * one. (An AsyncLocalStorage could tell the two callers apart, but on Node 20 it turns on promise
 * hooks for every promise of the process: measurable on every request.)
 */
export class Delivery {
  private running = 0;

  /** `log` takes the last-resort report of a failing handler (the store's injected logger). */
  constructor(private readonly log: StoreLogger) {}

  get active(): boolean {
    return this.running > 0;
  }

  async deliver(handler: (m: StoredMessage) => void | Promise<void>, m: StoredMessage): Promise<void> {
    this.running++;
    try {
      await handler(m);
    } catch (err) {
      // A failing handler must not stop the log for everybody else nor create a gap: the message
      // counts as delivered. The handler owns its errors; this is the last-resort report.
      this.log(`tail handler failed on seq ${m.seq} (stream ${m.stream}): ${errorText(err)}`);
    } finally {
      this.running--;
    }
  }
}
