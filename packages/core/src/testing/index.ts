/**
 * `@xenops/core/testing`: what other packages' tests share (the store contract suite). A test-only
 * entry point, resolved to these sources by vitest and by packages/tsconfig.tests.json; it is not
 * built and not part of the package's exports.
 */
export { AWKWARD_KEYS, collect, describeStoreContract, waitFor } from './store-contract.suite.js';
export { batch, damagedLog, foldMessages, GARBAGE, msg, vmConfig } from './damaged-log.js';
export { describeArchitecture, importsOf, packageOf, violationOf, type ImportRules, type ImportSite } from './architecture.js';
