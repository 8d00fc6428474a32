import type { SeedMethods } from '@xenops/core';
import type { Handlers } from './method.js';
import { seedMetadataHandlers } from './metadata.js';
import { seedMigrationHandlers } from './migration.js';
import { seedOperationHandlers } from './vm-operations.js';
import { addVm, cancelTask, listVms, runQueued, statTask, statVm, submitOperation } from './vm-calls.js';
import { queryInfo } from './xenopsd.js';

/**
 * The seed dialect (API.md §5.4): a handler for each of the 25 methods of core's table. Results
 * are encoded with the seed shapes of §4.12 by the dispatcher; the engine operations are the
 * xenopsd ones with the seed's semantics (start and resume end Running, clean shutdown falls back
 * to a hard power-off, add refuses an existing id).
 */
export const seedHandlers: Handlers<SeedMethods> = {
  'Query.query': async ({ gateway }) => queryInfo(gateway),
  'Vm.add': (call, a) => addVm(call, a.t, true),
  'Vm.remove': async (call, a) => {
    await runQueued(call, a.id, { kind: 'VM.remove' });
    return null;
  },
  'Vm.stat': (call, a) => statVm(call, a.id, a.as_of),
  'Vm.list': (call, a) => listVms(call, a.as_of),
  'Vm.start': (call, a) => submitOperation(call, a.id, { kind: 'VM.start', paused: false, unpause: true }),
  'Vm.shutdown': (call, a) =>
    submitOperation(call, a.id, {
      kind: 'VM.shutdown',
      ...(a.clean_shutdown_timeout === undefined ? {} : { delay: a.clean_shutdown_timeout }),
      fallbackToHard: true,
    }),
  'Vm.pause': (call, a) => submitOperation(call, a.id, { kind: 'VM.pause' }),
  'Vm.unpause': (call, a) => submitOperation(call, a.id, { kind: 'VM.unpause' }),
  ...seedOperationHandlers,
  ...seedMetadataHandlers,
  ...seedMigrationHandlers,
  'Task.stat': (call, a) => statTask(call, a.id, a.as_of),
  'Task.cancel': (call, a) => cancelTask(call, a.id),
};
