import {
  bool,
  Errors,
  float,
  int,
  list,
  option,
  QueryT,
  string,
  TaskT,
  tuple,
  unit,
  VmIdT,
  VmStateT,
  VmT,
  type QueryInfo,
  type VmConfig,
} from '@xenops/core';
import type { ArgSpec } from '../dispatch/args.js';
import { method, type GatewayContext, type MethodSpec } from './method.js';
import { updatesMethods } from '../updates/methods.js';
import { debugMethods } from './debug.js';
import { deviceMethods } from './devices.js';
import { hostMethods } from './host.js';
import { metadataMethods } from './metadata.js';
import { vmOperationMethods } from './vm-operations.js';
import { addVm, cancelTask, destroyTask, destroyTaskOnFinish, listTasks, listVms, runQueued, statTask, statVm, submitOperation } from './vm-calls.js';

const vmId: ArgSpec = { key: 'id', type: VmIdT };
const taskId: ArgSpec = { key: 'id', type: string };
const asOf: ArgSpec = { key: 'as_of', type: option(int), namedOnly: true };
const unitArg: ArgSpec = { key: 'unit', type: unit };
const VmPairT = tuple(VmT, VmStateT);

export const FEATURES = ['persistent-tasks', 'log-sequence-updates', 'change-stream', 'time-travel'];

export function queryInfo(gateway: GatewayContext): QueryInfo {
  return { name: 'xenops', vendor: 'xenops-ts', version: gateway.version, features: FEATURES, instance_id: gateway.instanceId };
}

/** Declared but not built yet: answers `["Unimplemented", "<name>"]` (§2.6). */
const pending = (name: string, args: readonly ArgSpec[] = []): MethodSpec => method(name, args, undefined);

/** The xenopsd dialect (API.md §5.1, §5.2): 90 methods. */
export const xenopsdMethods: readonly MethodSpec[] = [
  method('query', [unitArg], QueryT, async ({ gateway }) => queryInfo(gateway)),

  method('Task.stat', [taskId, asOf], TaskT, (call, a) => statTask(call, a.id as string, a.as_of as number | undefined)),
  method('Task.cancel', [taskId], unit, (call, a) => cancelTask(call, a.id as string)),
  method('Task.destroy', [taskId], unit, (call, a) => destroyTask(call, a.id as string)),
  method('Task.list', [asOf], list(TaskT), (call, a) => listTasks(call, a.as_of as number | undefined)),
  method('Task.destroy_on_finish', [taskId], unit, (call, a) => destroyTaskOnFinish(call, a.id as string)),

  ...hostMethods,

  method('VM.add', [{ key: 'vm', type: VmT }], VmIdT, (call, a) =>
    // The xenopsd wire has no `transient`: a VM added in this dialect is never transient (§4.2).
    addVm(call, { ...(a.vm as VmConfig), transient: false }, false),
  ),
  method('VM.remove', [vmId], unit, async (call, a) => {
    await runQueued(call, a.id as string, { kind: 'VM.remove' });
    return null;
  }),
  method('VM.stat', [vmId, asOf], VmPairT, async (call, a) => {
    const pair = await statVm(call, a.id as string, a.as_of as number | undefined);
    if (!pair) throw Errors.vmDoesNotExist(a.id as string);
    return pair;
  }),
  method('VM.exists', [vmId, asOf], bool, async (call, a) => (await statVm(call, a.id as string, a.as_of as number | undefined)) !== undefined),
  method('VM.list', [unitArg, asOf], list(VmPairT), (call, a) => listVms(call, a.as_of as number | undefined)),
  method('VM.start', [vmId, { key: 'paused', type: bool }], string, (call, a) =>
    submitOperation(call, a.id as string, { kind: 'VM.start', paused: a.paused as boolean, unpause: false }),
  ),
  method('VM.shutdown', [vmId, { key: 'delay', type: option(float) }], string, (call, a) =>
    submitOperation(call, a.id as string, {
      kind: 'VM.shutdown',
      ...(a.delay === undefined ? {} : { delay: a.delay as number }),
      fallbackToHard: false,
    }),
  ),
  method('VM.pause', [vmId], string, (call, a) => submitOperation(call, a.id as string, { kind: 'VM.pause' })),
  method('VM.unpause', [vmId], string, (call, a) => submitOperation(call, a.id as string, { kind: 'VM.unpause' })),
  ...vmOperationMethods,
  ...metadataMethods,
  pending('VM.migrate'),
  pending('VM.fast_resume'),

  ...deviceMethods,
  ...updatesMethods,
  ...debugMethods,
  method('DEBUG.shutdown', [unitArg], unit, async ({ gateway }) => {
    gateway.requestShutdown();
    return null;
  }),
];
