/**
 * @xenops/store-nats: the storage ports of @xenops/core on NATS JetStream (event stream, KV bucket
 * and object store of snapshots, command subjects), their setup and the NATS backup's restore.
 */
export { kvKey, natsNames, openNatsStores, type NatsNames } from './nats-stores.js';
export type { NatsStoreOptions, NatsStores } from './nats-store-options.js';
export { connectNats } from './nats-connection.js';
export { setupNatsResources } from './nats-resources.js';
export { restoreNatsBackup } from './nats-restore.js';
export { CURRENT_EVENT_SUBJECT_LAYOUT, eventSubjectOf, streamKeyOfSubject, type EventSubjectLayout } from './event-subjects.js';
