import type { DomainEvent, Effect, HostFacts, Observation, ObservedDomain, VmAggregate } from '@xenops/core';

/** What a backend gets while it performs one effect. */
export interface EffectContext {
  /** Aborted when the task is cancelled (before its point of no return) or its atom's limit passes: waits end at once. */
  readonly signal: AbortSignal;
  /** Called when a wait begins: a cancellation point (§7.1). Throws when the task is cancelled. */
  readonly cancelPoint: () => void;
  /** The point of no return (§7.1): from now on the task ignores cancellation. */
  readonly markNonCancellable: () => void;
  /** How far a long effect has got (0..1 of this atom): the task's progress shows it (a migration's transfer). */
  readonly progress?: (fraction: number) => void;
}

/**
 * How a backend moves a migrating domain's state to another host's agent (§7.8). The agent
 * carries it over the bus; the backend decides what the state is and what to do with it.
 */
export interface MigrationLink {
  /**
   * Sends `state` to `destination`'s agent under `transferId`, in acknowledged chunks, calling
   * `onProgress` with the fraction sent after each. Rejects when the destination cannot be reached
   * or refuses a chunk, and when `signal` aborts.
   */
  send(
    destination: string,
    transfer: { readonly vmId: string; readonly transferId: string },
    state: Uint8Array,
    opts: { readonly signal: AbortSignal; readonly onProgress?: (fraction: number) => void },
  ): Promise<void>;
  /** The whole state received under `transferId` (until the agent drops it); undefined when none arrived complete. */
  take(transferId: string): Uint8Array | undefined;
  /**
   * Asks `destination`'s backend to get ready to receive (`prepareMigration`), with `payload`
   * (JSON-able) from this backend; resolves with its answer (e.g. where to send the stream).
   */
  prepare(destination: string, transfer: { readonly vmId: string; readonly transferId: string }, payload: unknown, signal: AbortSignal): Promise<unknown>;
}

/** A domain the log says exists on this host, for a backend to adopt or check at start. */
export interface KnownDomain {
  readonly vmId: string;
  readonly domid: number;
  readonly paused: boolean;
  /** The VM's VBDs plugged now (names). */
  readonly pluggedVbds: readonly string[];
}

/** What a backend is told when it starts. */
export interface BackendHost {
  readonly hostId: string;
  /** The agent's data directory: where a backend keeps the little state of its own it has (absent: nowhere). */
  readonly dataDir?: string;
  readonly logger: (line: string) => void;
  readonly now: () => number;
  /** The highest domid this host has used, as the log shows: new domains get higher ones (§8.1). */
  readonly lastDomid: number;
  /** The domains the log says this host has. */
  readonly knownDomains: readonly KnownDomain[];
  /** Where a migration's state goes to and comes from (§7.8); absent: this host cannot migrate. */
  readonly migration?: MigrationLink;
}

/** The VM as `debugTrigger` sees it. */
export type VmView = Pick<VmAggregate, 'id' | 'config' | 'domain' | 'devices'>;

export interface BackendCapabilities {
  /** DEBUG.trigger's guest hooks (API.md §8.3). Without them every DEBUG.trigger is Unimplemented. */
  readonly debugTriggers: boolean;
  /**
   * True for a backend whose effects act on the world (QEMU, Xen): each atom's facts are written
   * before the next atom runs, so a crash never leaves an effect unrecorded. False for the
   * simulator, whose effects leave nothing outside the log: a task's steps may share one message,
   * and a crash before it is written simply means the steps never happened.
   */
  readonly journalsEachAtom: boolean;
  /**
   * Every atom that does not wait (`atomMayWait`) ends promptly, touching nothing outside the
   * process but what the log records (the simulator; needs `journalsEachAtom` false). A task made
   * only of such atoms, queued on an idle VM with a free worker, then runs in the call that queued
   * it: created, run and ended in one message, one durable write instead of two.
   */
  readonly instantAtoms?: boolean;
}

/**
 * A hypervisor backend (xenopsd's `B.*`): it performs effects the engine decided and reports what
 * it observed; it never writes the log and never decides a domain rule (atom-semantics.ts does).
 * It also reports what it did not cause (domain events), what exists (for reconciliation at
 * start) and facts about its host.
 */
export interface Backend {
  /** As `xenopsd --backend` names it: `simulator`, `qemu`. */
  readonly name: string;
  readonly capabilities: BackendCapabilities;
  start(host: BackendHost): Promise<void>;
  /** Ends everything the backend runs for itself (timers, watchers, files open); domains stay. */
  close(): Promise<void>;
  perform(effect: Effect, ctx: EffectContext): Promise<Observation>;
  /** The domains that exist on this host now. */
  domains(): Promise<readonly ObservedDomain[]>;
  hostFacts(): Promise<HostFacts>;
  /** Domain events the backend did not cause; returns the unsubscribe. */
  onDomainEvent(listener: (e: DomainEvent) => void): () => void;
  /**
   * DEBUG.trigger's guest hooks (§8.3), after the engine checked the arguments, the VM and its
   * domain: `reboot`, `halt`, `crash` (a domain event, emitted before the returned promise
   * settles), `no-ack` (args `[vm, mode]`), `check-vbd-plug-ordering`. Present with the
   * `debugTriggers` capability only.
   */
  debugTrigger?(cmd: string, args: readonly string[], vm: VmView): Promise<void>;
  /**
   * A migration's destination (§7.8), before the state is sent: gets ready to receive it and says
   * how (a backend that streams through the agent's link does not need this). JSON in, JSON out.
   */
  prepareMigration?(transfer: { readonly vmId: string; readonly transferId: string }, payload: unknown): Promise<unknown>;
  /** A migration prepared here ended without passing to this host: whatever was made ready for it goes. */
  abandonMigration?(transferId: string): Promise<void>;
}
