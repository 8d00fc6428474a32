import { float, int, list, option, QueryT, string, TaskT, tuple, unit, VmIdT, VmStateT, VmT, type VmConfig } from '@xenops/core';
import type { ArgSpec } from '../dispatch/args.js';
import { method, type MethodSpec } from './method.js';
import { seedMetadataMethods } from './metadata.js';
import { seedOperationMethods } from './vm-operations.js';
import { addVm, cancelTask, listVms, runQueued, statTask, statVm, submitOperation } from './vm-calls.js';
import { queryInfo } from './xenopsd.js';

const vmId: ArgSpec = { key: 'id', type: VmIdT };
const taskId: ArgSpec = { key: 'id', type: string };
const asOf: ArgSpec = { key: 'as_of', type: option(int), namedOnly: true };
const VmPairT = tuple(VmT, VmStateT);

const pending = (name: string): MethodSpec => method(name, [], undefined);

/**
 * The seed dialect (API.md §5.4): 25 methods. Results are encoded with the seed shapes of §4.12
 * by the dispatcher; the engine operations are the xenopsd ones with the seed's semantics
 * (start and resume end Running, clean shutdown falls back to a hard power-off, add refuses an
 * existing id).
 */
export const seedMethods: readonly MethodSpec[] = [
  method('Query.query', [], QueryT, async ({ gateway }) => queryInfo(gateway)),
  method('Vm.add', [{ key: 't', type: VmT }], VmIdT, (call, a) => addVm(call, a.t as VmConfig, true)),
  method('Vm.remove', [vmId], unit, async (call, a) => {
    await runQueued(call, a.id as string, { kind: 'VM.remove' });
    return null;
  }),
  method('Vm.stat', [vmId, asOf], option(VmPairT), (call, a) => statVm(call, a.id as string, a.as_of as number | undefined)),
  method('Vm.list', [asOf], list(VmPairT), (call, a) => listVms(call, a.as_of as number | undefined)),
  method('Vm.start', [vmId], string, (call, a) => submitOperation(call, a.id as string, { kind: 'VM.start', paused: false, unpause: true })),
  method('Vm.shutdown', [vmId, { key: 'clean_shutdown_timeout', type: option(float) }], string, (call, a) =>
    submitOperation(call, a.id as string, {
      kind: 'VM.shutdown',
      ...(a.clean_shutdown_timeout === undefined ? {} : { delay: a.clean_shutdown_timeout as number }),
      fallbackToHard: true,
    }),
  ),
  method('Vm.pause', [vmId], string, (call, a) => submitOperation(call, a.id as string, { kind: 'VM.pause' })),
  method('Vm.unpause', [vmId], string, (call, a) => submitOperation(call, a.id as string, { kind: 'VM.unpause' })),
  ...seedOperationMethods,
  ...seedMetadataMethods,
  pending('Vm.migrate'),
  method('Task.stat', [taskId, asOf], TaskT, (call, a) => statTask(call, a.id as string, a.as_of as number | undefined)),
  method('Task.cancel', [taskId], unit, (call, a) => cancelTask(call, a.id as string)),
];
