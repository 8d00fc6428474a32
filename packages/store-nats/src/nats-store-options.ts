import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsSecurityOptions, Stores } from '@xenops/core';

export interface NatsStoreOptions extends NatsSecurityOptions {
  /** e.g. `nats://127.0.0.1:4222`; several comma-separated URLs are allowed. */
  readonly servers: string;
  /**
   * Namespace of every NATS resource: stream `<prefix>_EVENTS` on subjects `<prefix>.ev.>`, KV
   * bucket `<prefix>_snapshots` and object store `<prefix>_snapshots` (big snapshots), command
   * subjects `<prefix>.cmd.<host>`. Default `xenops`.
   * Tests use a unique prefix per run.
   */
  readonly prefix?: string;
  /**
   * Copies JetStream keeps of the stream, the KV bucket and the object store when it creates them
   * (1 to 5; default 1). In a NATS cluster, 3 survives the loss of one server. Resources that exist
   * keep theirs.
   */
  readonly replicas?: number;
  /** Connection name shown by the server. */
  readonly name?: string;
  /**
   * The role this connection serves (`gateway`, `agent`, `all`): its replies come on the role's own
   * inbox subjects (see xenopsd's `natsRolePermissions`). Absent: the client's default `_INBOX`.
   */
  readonly role?: string;
  /** Where notices about the resources found at open go (default: stderr). */
  readonly log?: (line: string) => void;
}

/** The stores on NATS, with their connection. */
export interface NatsStores extends Stores {
  readonly mode: 'nats';
  /**
   * The connection, for the gateway's public subjects (the JSON-RPC subject of API.md §2.7 and the
   * change records of §9.4), which are not namespaced by the prefix.
   */
  readonly nats: NatsConnection;
}
