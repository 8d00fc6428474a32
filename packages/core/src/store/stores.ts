import type { NatsConnection } from '@nats-io/transport-node';
import type { BackupHeader } from './backup/backup-file.js';
import type { CommandBus } from './command-bus.js';
import type { EventLog } from './event-log.js';
import type { NatsSecurityOptions } from './nats/nats-connection.js';
import type { SnapshotStore } from './snapshot-store.js';

export type StoreMode = 'embedded' | 'nats';

/** The three storage ports, opened together and closed together. */
export interface Stores {
  readonly mode: StoreMode;
  /**
   * NATS mode only: the connection, for the gateway's public subjects (the JSON-RPC subject of
   * API.md §2.7 and the change records of §9.4), which are not namespaced by the prefix.
   */
  readonly nats?: NatsConnection;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  readonly bus: CommandBus;
  /**
   * A consistent copy of the running store in the backup file format (backup/backup-file.ts):
   * embedded, SQLite's online backup of the whole database; NATS, a JetStream snapshot of the
   * event stream plus the requested snapshot entries.
   */
  backup?(opts: BackupOptions): Promise<StoreBackup>;
  close(): Promise<void>;
}

export interface BackupOptions {
  /** Version of the xenops taking it (recorded in the header). */
  readonly writer: string;
  /** Snapshot entries to carry (NATS; the embedded copy holds them all anyway). */
  readonly snapshotKeys?: readonly string[];
}

export interface StoreBackup {
  readonly header: BackupHeader;
  /**
   * The file's bytes, header to end record. Pulling them drives the copy; a consumer must read
   * them to the end or stop with `return()` (a copy left behind is removed at the next open).
   */
  readonly bytes: AsyncIterable<Uint8Array>;
}

export interface EmbeddedStoreOptions {
  /** Directory holding the SQLite database (created if missing). */
  readonly dataDir: string;
}

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
  /** Connection name shown by the server. */
  readonly name?: string;
  /**
   * The role this connection serves (`gateway`, `agent`, `all`): its replies come on the role's own
   * inbox subjects (see `natsRolePermissions`). Absent: the client's default `_INBOX`.
   */
  readonly role?: string;
  /** Where notices about the resources found at open go (default: stderr). */
  readonly log?: (line: string) => void;
}
