import {
  BusRemoteError,
  BusTimeoutError,
  DEFAULT_BUS_TIMEOUT_MS,
  NoResponderError,
  type BusRequestOptions,
  type CommandBus,
} from './command-bus.js';
import { StoreUnavailableError, type Subscription } from './event-log.js';

type Handler = (request: Uint8Array) => Promise<Uint8Array>;

/** In-process bus: several servers of one address share its requests round-robin (like a queue group). */
export class InProcessCommandBus implements CommandBus {
  private readonly servers = new Map<string, { handlers: Handler[]; next: number }>();
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;

  async serve(address: string, handler: Handler): Promise<Subscription> {
    if (this.closed) throw new StoreUnavailableError('the in-process bus is closed');
    let entry = this.servers.get(address);
    if (!entry) {
      entry = { handlers: [], next: 0 };
      this.servers.set(address, entry);
    }
    entry.handlers.push(handler);
    let open = true;
    return {
      close: async () => {
        if (!open) return;
        open = false;
        const e = this.servers.get(address);
        if (!e) return;
        const i = e.handlers.indexOf(handler);
        if (i >= 0) e.handlers.splice(i, 1);
        if (e.handlers.length === 0) this.servers.delete(address);
      },
    };
  }

  async request(address: string, data: Uint8Array, options?: BusRequestOptions): Promise<Uint8Array> {
    if (this.closed) throw new StoreUnavailableError('the in-process bus is closed');
    const entry = this.servers.get(address);
    if (!entry || entry.handlers.length === 0) throw new NoResponderError(address);
    const handler = entry.handlers[entry.next++ % entry.handlers.length]!;
    const timeoutMs = options?.timeoutMs ?? DEFAULT_BUS_TIMEOUT_MS;
    // Copy both ways: neither side may observe the other's later mutations (as on a wire).
    const work = Promise.resolve()
      .then(() => handler(data.slice()))
      .then(
        (reply) => reply.slice(),
        (err: unknown) => {
          throw new BusRemoteError(address, err instanceof Error ? err.message : String(err));
        },
      );
    this.inflight.add(work);
    const untrack = () => this.inflight.delete(work);
    work.then(untrack, untrack);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusTimeoutError(address, timeoutMs)), timeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
      work.catch(() => {}); // a late failure after a timeout is nobody's business
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.servers.clear();
    await Promise.allSettled([...this.inflight]);
  }
}
