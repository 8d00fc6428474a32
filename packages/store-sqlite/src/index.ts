/**
 * @xenops/store-sqlite: the storage ports of @xenops/core on one SQLite file (embedded mode, one
 * process), the data dir's lock, and the embedded backup's restore.
 */
export { openEmbeddedStores, type EmbeddedStoreOptions } from './embedded-stores.js';
export { restoreEmbeddedBackup } from './embedded-backup.js';
export { lockDataDir, LOCK_FILE, PID_FILE, type DataDirLock } from './data-dir-lock.js';
export { DataDirInUseError, StoreCorruptError, type StoreCorruptReason } from './store-errors.js';
