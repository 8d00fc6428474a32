import type { BackupHeader } from './backup/backup-file.js';
import type { CommandBus } from './command-bus.js';
import type { EventLog } from './event-log.js';
import type { HostRegistry, LeaseStore } from './host-registry.js';
import type { SnapshotStore } from './snapshot-store.js';

export type StoreMode = 'embedded' | 'nats';

/**
 * The three storage ports, opened together and closed together. An adapter may add what only it
 * has (the NATS stores add their connection, see @xenops/store-nats's NatsStores).
 */
export interface Stores {
  readonly mode: StoreMode;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  readonly bus: CommandBus;
  /** The hosts of the cluster (API.md §9.7): each agent refreshes its own registration. */
  readonly hosts: HostRegistry;
  /** Leases of the cluster-wide jobs (task reaper, retention janitor): one runs them at a time. */
  readonly leases: LeaseStore;
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
