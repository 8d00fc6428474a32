import { describeArchitecture } from '@xenops/core/testing';

// The gateway never imports the actors: the bus is the only door between them (ARCHITECTURE.md
// "The rooms"). Its NATS connection is handed to it: it names nats.js's types only.
describeArchitecture(import.meta.url, {
  ours: ['@xenops/core'],
  thirdParty: ['@nats-io/transport-node', 'saxes'],
  lazy: ['@nats-io/transport-node'],
  tests: { ours: ['@xenops/store-sqlite'], thirdParty: ['better-sqlite3'] },
});
