export {
  AppendTooLargeError,
  ConcurrencyError,
  StorePermissionError,
  StoreUnavailableError,
  messagesOfPages,
  type AppendRequest,
  type EventLog,
  type StoredMessage,
  type Subscription,
} from './event-log.js';
export type { Snapshot, SnapshotStore } from './snapshot-store.js';
export {
  ANY_AGENT,
  BusRemoteError,
  BusPayloadTooLargeError,
  BusTimeoutError,
  DEFAULT_BUS_TIMEOUT_MS,
  NoResponderError,
  type BusRequestOptions,
  type CommandBus,
} from './command-bus.js';
export type { BackupOptions, StoreBackup, StoreMode, Stores } from './stores.js';
export {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupFileError,
  BackupWriter,
  readBackupFile,
  RestoreError,
  type BackupFile,
  type BackupFileProblem,
  type BackupHeader,
  type BackupMode,
  type BackupSnapshotEntry,
  type RestoreSummary,
} from './backup/backup-file.js';
export { escapeSubjectToken, unescapeSubjectToken } from './subject-token.js';
export { StoreWriteError, type StoreWriteFailure } from './store-errors.js';
export { InProcessCommandBus } from './in-process-bus.js';
export { Delivery, errorText, stderrStoreLogger, type StoreLogger } from './tail-util.js';
export { InMemoryHostRegistry, InMemoryLeases, type HostRegistration, type HostRegistry, type LeaseStore, type RegisteredHost } from './host-registry.js';
