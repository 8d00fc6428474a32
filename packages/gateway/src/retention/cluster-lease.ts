/**
 * A lease on a cluster-wide job (issue 14 item 3): of all the gateways of a cluster, the one that
 * holds it runs the job. It is taken by compare-and-set in the store's lease bucket and renewed
 * well within its length; a holder that dies stops renewing, the lease lapses, and the next
 * gateway to ask takes it. A holder that cannot renew (NATS away) stops counting itself the
 * holder at once, so two gateways hold it together for at most one renewal interval.
 */
import type { LeaseStore } from '@xenops/core';

export class ClusterLease {
  private timer?: NodeJS.Timeout;
  private held = false;
  private pending?: Promise<void>;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly leases: LeaseStore,
    /** This process (host id and instance id): what the lease records. */
    readonly holder: string,
    private readonly logger: (line: string) => void = () => {},
    /** Called when this process takes the lease (e.g. to run a pass of the job at once). */
    private readonly onAcquired: () => void = () => {},
    /** How often to renew (or try to take) it: a third of its length by default. */
    private readonly everyMs = Math.max(500, Math.floor(leases.ttlMs / 3)),
  ) {}

  /** Whether this process holds the lease now (its last renewal succeeded). */
  get isHeld(): boolean {
    return this.held && !this.stopped;
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  private tick(): void {
    if (this.pending || this.stopped) return;
    this.pending = this.leases
      .acquire(this.name, this.holder)
      .then(
        (held) => this.note(held),
        (e: unknown) => {
          this.note(false);
          this.logger(`lease ${this.name}: ${(e as Error).message}`);
        },
      )
      .finally(() => (this.pending = undefined));
  }

  private note(held: boolean): void {
    if (held !== this.held) this.logger(`lease ${this.name}: ${held ? 'acquired' : 'lost'} by ${this.holder}`);
    const acquired = held && !this.held;
    this.held = held;
    if (acquired) this.onAcquired();
  }

  /** Stops renewing and hands the lease on at once (a holder that dies hands it on by lapsing). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.pending;
    if (this.held) {
      this.held = false;
      await this.leases.release(this.name, this.holder).catch((e: unknown) => this.logger(`lease ${this.name}: could not release: ${(e as Error).message}`));
      this.logger(`lease ${this.name}: released by ${this.holder}`);
    }
  }
}
