import type { CommandBus } from './command-bus.js';
import type { EventLog } from './event-log.js';
import type { SnapshotStore } from './snapshot-store.js';

export type StoreMode = 'embedded' | 'nats';

/** The three storage ports, opened together and closed together. */
export interface Stores {
  readonly mode: StoreMode;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  readonly bus: CommandBus;
  close(): Promise<void>;
}

export interface EmbeddedStoreOptions {
  /** Directory holding the SQLite database (created if missing). */
  readonly dataDir: string;
}

export interface NatsStoreOptions {
  /** e.g. `nats://127.0.0.1:4222`; several comma-separated URLs are allowed. */
  readonly servers: string;
  /**
   * Namespace of every NATS resource: stream `<prefix>_EVENTS` on subjects `<prefix>.ev.>`, KV
   * bucket `<prefix>_snapshots`, command subjects `<prefix>.cmd.<host>`. Default `xenops`.
   * Tests use a unique prefix per run.
   */
  readonly prefix?: string;
  readonly credsFile?: string;
  readonly nkeyFile?: string;
  readonly tlsCaFile?: string;
  /** Connection name shown by the server. */
  readonly name?: string;
}
