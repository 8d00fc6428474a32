import { describeArchitecture } from './testing/architecture.js';

// The IDL, events, pure model and storage ports: loadable without SQLite or NATS.
describeArchitecture(import.meta.url, { ours: [], thirdParty: ['immer', 'protobufjs'] });
