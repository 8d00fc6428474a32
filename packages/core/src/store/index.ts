export {
  ConcurrencyError,
  StoreUnavailableError,
  type AppendRequest,
  type EventLog,
  type StoredMessage,
  type Subscription,
} from './event-log.js';
export type { Snapshot, SnapshotStore } from './snapshot-store.js';
export {
  BusRemoteError,
  BusTimeoutError,
  DEFAULT_BUS_TIMEOUT_MS,
  NoResponderError,
  type CommandBus,
} from './command-bus.js';
export type { EmbeddedStoreOptions, NatsStoreOptions, StoreMode, Stores } from './stores.js';
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
