export {
  ConcurrencyError,
  StorePermissionError,
  StoreUnavailableError,
  type AppendRequest,
  type EventLog,
  type StoredMessage,
  type Subscription,
} from './event-log.js';
export type { Snapshot, SnapshotStore } from './snapshot-store.js';
export {
  ANY_AGENT,
  BusRemoteError,
  BusTimeoutError,
  DEFAULT_BUS_TIMEOUT_MS,
  NoResponderError,
  type CommandBus,
} from './command-bus.js';
export type { BackupOptions, EmbeddedStoreOptions, NatsStoreOptions, StoreBackup, StoreMode, Stores } from './stores.js';
export {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupFileError,
  readBackupFile,
  RestoreError,
  type BackupFile,
  type BackupFileProblem,
  type BackupHeader,
  type BackupMode,
} from './backup/backup-file.js';
export { restoreEmbeddedBackup, type RestoreSummary } from './embedded/embedded-backup.js';
export { restoreNatsBackup } from './nats/nats-restore.js';
export { escapeSubjectToken, unescapeSubjectToken } from './subject-token.js';
export { openEmbeddedStores } from './embedded/embedded-stores.js';
export { lockDataDir, LOCK_FILE, PID_FILE, type DataDirLock } from './data-dir-lock.js';
export {
  DataDirInUseError,
  StoreCorruptError,
  StoreWriteError,
  type StoreCorruptReason,
  type StoreWriteFailure,
} from './store-errors.js';
export { InProcessCommandBus } from './in-process-bus.js';
export { kvKey, natsNames, openNatsStores, type NatsNames } from './nats/nats-stores.js';
export { outboundWindowOf, type OutboundWindow } from './nats/outbound-window.js';
export { CURRENT_EVENT_SUBJECT_LAYOUT, eventSubjectOf, streamKeyOfSubject, type EventSubjectLayout } from './nats/event-subjects.js';
export { NatsAuthenticationError, NatsUnreachableError } from './nats/nats-errors.js';
export { setupNatsResources } from './nats/nats-resources.js';
export { connectNats, type NatsSecurityOptions } from './nats/nats-connection.js';
