import type { AnyMethodDeclaration, ApiDialect, ArgsOf, EventLog, HostRegistry, ResultOf, StoreMode } from '@xenops/core';
import type { PlacementPolicy } from '../hosts/placement.js';
import type { Projection } from '../read-model/projection.js';
import type { EngineClient } from '../service/engine-client.js';

/** What a method handler may use: the read model, the engine (through the bus) and the log. */
export interface GatewayContext {
  readonly hostId: string;
  readonly mode: StoreMode;
  readonly instanceId: string;
  readonly version: string;
  readonly projection: Projection;
  readonly engine: EngineClient;
  readonly log: EventLog;
  /** The hosts of the cluster (API.md §9.7) and how old a registration may be for its host to be Up. */
  readonly hosts: HostRegistry;
  readonly hostDownAfterMs: number;
  /** Where VM.start / VM.resume put an unowned VM without an explicit host (`--placement`). */
  readonly placement: PlacementPolicy;
  /** `--host-scope ID`: VM.list, VM.stat and UPDATES show only that host's VMs. */
  readonly hostScope?: string;
  /** The gateway's log lines (placements, leases). */
  readonly logLine: (line: string) => void;
  /** The cluster leases this gateway holds now (get_diagnostics). */
  readonly leasesHeld: () => string[];
  /**
   * Holds the lease `name` for as long as this gateway runs a job of its own (an evacuation):
   * another gateway that finds it lapsed knows the job's runner is gone.
   */
  readonly holdLease: (name: string) => { release(): Promise<void> };
  /** DEBUG.shutdown: drain and exit after the reply has been sent. */
  readonly requestShutdown: () => void;
}

export interface CallContext {
  readonly gateway: GatewayContext;
  readonly dbg: string;
  readonly dialect: ApiDialect;
  /** A signal aborted when the caller is gone (created on first call; for blocking calls). */
  readonly callerGone?: () => AbortSignal;
  /**
   * An argument as it came on the wire, before decoding: for the rare rule that needs what the
   * type alone cannot tell (a seed VBD position given as a bare integer).
   */
  readonly wireArgument: (key: string) => unknown;
}

/** Runs one method of the contract (API.md §5) on arguments decoded by its declaration. */
export type Handler<M extends AnyMethodDeclaration> = (call: CallContext, args: ArgsOf<M>) => Promise<ResultOf<M>>;

/** A method of the contract not built yet: answers `["Unimplemented", "<name>"]` (§2.6). */
export const UNIMPLEMENTED = 'Unimplemented';

/** A handler for every method of a dialect's table (or UNIMPLEMENTED): none can be forgotten. */
export type Handlers<T extends { readonly [name: string]: AnyMethodDeclaration }> = {
  readonly [N in keyof T]: Handler<T[N]> | typeof UNIMPLEMENTED;
};

/** Some handlers of a dialect (one module's share of the table). */
export type SomeHandlers<T extends { readonly [name: string]: AnyMethodDeclaration }> = Partial<Handlers<T>>;
