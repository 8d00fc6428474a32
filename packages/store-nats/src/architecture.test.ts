import { describeArchitecture } from '@xenops/core/testing';

describeArchitecture(import.meta.url, {
  ours: ['@xenops/core'],
  thirdParty: ['@nats-io/jetstream', '@nats-io/kv', '@nats-io/obj', '@nats-io/transport-node'],
});
