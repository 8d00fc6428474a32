import { describeArchitecture } from '@xenops/core/testing';

// The agents reach the gateway only through the command bus and the log; tests run on a real store.
describeArchitecture(import.meta.url, {
  ours: ['@xenops/core'],
  thirdParty: ['p-limit', 'xstate'],
  tests: { ours: ['@xenops/store-sqlite'], thirdParty: ['better-sqlite3'] },
});
