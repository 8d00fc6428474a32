/**
 * Whether the NATS connection is up right now, from the client's status events. While it is down
 * every store operation fails at once with StoreUnavailableError (instead of waiting for a
 * request timeout), operations in flight when it drops fail at the drop, and the parts that hold
 * server state (tails' consumers) are told when it is back so that they rebuild it themselves.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { StoreUnavailableError } from '@xenops/core';

export class NatsLink {
  private up = true;
  private downSinceMs: number | undefined;
  private readonly onDown = new Set<(why: StoreUnavailableError) => void>();
  private readonly onUp = new Set<() => void>();
  private readonly watching: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly server: string,
  ) {
    this.watching = (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.markDown();
        else if (s.type === 'reconnect') this.markUp();
      }
      // The iterator ends when the connection is closed for good.
      this.markDown();
    })().catch(() => this.markDown());
  }

  get isUp(): boolean {
    return this.up && !this.nc.isClosed();
  }

  /** When the connection dropped (ms since the epoch), or undefined while it is up. */
  get downSince(): number | undefined {
    return this.isUp ? undefined : (this.downSinceMs ?? Date.now());
  }

  /** Why an operation cannot be sent now, or undefined. */
  problem(): string | undefined {
    if (this.nc.isClosed()) return 'the NATS connection is closed';
    if (!this.up) return `NATS at ${this.server} is unreachable (disconnected ${((Date.now() - (this.downSinceMs ?? Date.now())) / 1000).toFixed(1)} s ago, reconnecting)`;
    return undefined;
  }

  /** Throws StoreUnavailableError at once while the connection is down. */
  check(what: string): void {
    const p = this.problem();
    if (p) throw new StoreUnavailableError(`${what}: ${p}`);
  }

  /**
   * `op` (started now, the link checked first), failed with StoreUnavailableError as soon as the
   * connection drops: its outcome is then unknown, as after a timeout (an append may have been
   * stored; retried with its messageId it is not stored twice).
   */
  async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    this.check(what);
    let cancel: (() => void) | undefined;
    const dropped = new Promise<never>((_, reject) => {
      const listener = (why: StoreUnavailableError) => reject(new StoreUnavailableError(`${what}: ${why.message}`));
      this.onDown.add(listener);
      cancel = () => this.onDown.delete(listener);
    });
    dropped.catch(() => {});
    try {
      return await Promise.race([op(), dropped]);
    } finally {
      cancel?.();
    }
  }

  /** Calls `f` every time the connection drops; returns the unsubscribe. */
  whenDown(f: (why: StoreUnavailableError) => void): () => void {
    this.onDown.add(f);
    return () => this.onDown.delete(f);
  }

  /** Calls `f` every time the connection comes back; returns the unsubscribe. */
  whenBack(f: () => void): () => void {
    this.onUp.add(f);
    return () => this.onUp.delete(f);
  }

  private markDown(): void {
    if (!this.up) return;
    this.up = false;
    this.downSinceMs = Date.now();
    const why = new StoreUnavailableError(`NATS at ${this.server} is unreachable`);
    for (const f of [...this.onDown]) f(why);
  }

  private markUp(): void {
    if (this.up || this.nc.isClosed()) return;
    this.up = true;
    this.downSinceMs = undefined;
    for (const f of [...this.onUp]) f();
  }

  /** Resolves once the status watch has ended (after the connection closed). */
  closed(): Promise<void> {
    return this.watching;
  }
}
