import { describeArchitecture } from '@xenops/core/testing';

// The composition root: it may import every package of ours, and the NATS micro protocol (discovery).
describeArchitecture(import.meta.url, {
  ours: ['@xenops/actors', '@xenops/console', '@xenops/core', '@xenops/gateway', '@xenops/store-nats', '@xenops/store-sqlite'],
  thirdParty: ['@nats-io/services'],
});
