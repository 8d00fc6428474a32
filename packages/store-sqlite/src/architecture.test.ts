import { describeArchitecture } from '@xenops/core/testing';

describeArchitecture(import.meta.url, { ours: ['@xenops/core'], thirdParty: ['better-sqlite3'] });
