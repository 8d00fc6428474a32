import { describeArchitecture } from '@xenops/core/testing';

// nats.js is loaded by the NATS transport when first used: an HTTP client never loads it.
describeArchitecture(import.meta.url, {
  ours: ['@xenops/core'],
  thirdParty: ['@nats-io/transport-node'],
  lazy: ['@nats-io/transport-node'],
});
