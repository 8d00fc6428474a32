/**
 * The host registry (API.md §9.7) and cluster leases: the two pieces of shared state that are not
 * facts of the log. A host's registration is a heartbeat, not history: it is overwritten every few
 * seconds by that host's agent alone (its one writer), and readers judge it by its age. A lease
 * names the one process that runs a cluster-wide job; it is taken by compare-and-set and lapses by
 * itself when its holder stops renewing it.
 */

/** What an agent says about its host at each refresh. */
export interface HostRegistration {
  readonly id: string;
  readonly backend: string;
  readonly version: string;
  /** When the agent's process started (ms since the epoch). */
  readonly startedMs: number;
  /** Where the host can be reached (listen addresses, sockets): for migration's destination URLs (§7.8). */
  readonly addresses: readonly string[];
  readonly cpus: number;
  /** Bytes of memory of the host, as its backend reports it. */
  readonly memoryTotal: number;
}

/** A registration as stored, with the time of its last refresh as the store saw it. */
export interface RegisteredHost extends HostRegistration {
  /** When the registration was last written (ms since the epoch; NATS: the server's timestamp). */
  readonly lastSeenMs: number;
}

export interface HostRegistry {
  /** Writes (refreshes) the registration of `reg.id`. */
  register(reg: HostRegistration): Promise<void>;
  /** Every registration kept, Up or not (a reader decides Down by `lastSeenMs`). */
  list(): Promise<RegisteredHost[]>;
}

export interface LeaseStore {
  /** How long a lease lasts without a renewal (ms). */
  readonly ttlMs: number;
  /**
   * Takes the lease `name` for `holder` when nobody holds it, or renews it when `holder` does.
   * Returns whether `holder` holds it now.
   */
  acquire(name: string, holder: string): Promise<boolean>;
  /** Gives the lease up if `holder` holds it (a clean stop hands it on at once). */
  release(name: string, holder: string): Promise<void>;
  /** Who holds the lease now, if anyone. */
  holder(name: string): Promise<string | undefined>;
}

/** The registry of one process (embedded mode: one host). */
export class InMemoryHostRegistry implements HostRegistry {
  private readonly hosts = new Map<string, RegisteredHost>();

  constructor(private readonly now: () => number = Date.now) {}

  async register(reg: HostRegistration): Promise<void> {
    this.hosts.set(reg.id, { ...reg, addresses: [...reg.addresses], lastSeenMs: this.now() });
  }

  async list(): Promise<RegisteredHost[]> {
    return [...this.hosts.values()];
  }
}

/** Leases within one process (embedded mode: its data dir lock already makes it the only one). */
export class InMemoryLeases implements LeaseStore {
  private readonly held = new Map<string, { holder: string; untilMs: number }>();

  constructor(
    readonly ttlMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async acquire(name: string, holder: string): Promise<boolean> {
    const current = this.held.get(name);
    if (current && current.holder !== holder && current.untilMs > this.now()) return false;
    this.held.set(name, { holder, untilMs: this.now() + this.ttlMs });
    return true;
  }

  async release(name: string, holder: string): Promise<void> {
    if (this.held.get(name)?.holder === holder) this.held.delete(name);
  }

  async holder(name: string): Promise<string | undefined> {
    const current = this.held.get(name);
    return current && current.untilMs > this.now() ? current.holder : undefined;
  }
}
