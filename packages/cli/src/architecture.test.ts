import { describeArchitecture } from '@xenops/core/testing';

// A client only: never the actors, the gateway or a store adapter (xenops restore runs xenopsd).
describeArchitecture(import.meta.url, { ours: ['@xenops/client', '@xenops/core'], thirdParty: ['pngjs', 'yaml'] });
