import { AsyncLocalStorage } from 'node:async_hooks';
import type { StoredMessage } from './event-log.js';

/** Which tail's handler is running in the current async context (to let close() be called from it). */
export const tailContext = new AsyncLocalStorage<object>();

export async function deliver(
  token: object,
  handler: (m: StoredMessage) => void | Promise<void>,
  m: StoredMessage,
): Promise<void> {
  try {
    await tailContext.run(token, () => handler(m));
  } catch (err) {
    // A failing handler must not stop the log for everybody else nor create a gap: the message
    // counts as delivered. The handler owns its errors; this is the last-resort report.
    console.error(`[xenops store] tail handler failed on seq ${m.seq} (stream ${m.stream}):`, err);
  }
}

export function isInside(token: object): boolean {
  return tailContext.getStore() === token;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
