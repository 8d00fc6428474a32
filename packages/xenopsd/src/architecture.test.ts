import { describeArchitecture } from '@xenops/core/testing';

// The composition root: it may import every package of ours, and needs nothing else.
describeArchitecture(import.meta.url, {
  ours: ['@xenops/actors', '@xenops/core', '@xenops/gateway', '@xenops/store-nats', '@xenops/store-sqlite'],
  thirdParty: [],
});
