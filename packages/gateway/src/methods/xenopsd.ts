import { Errors, type QueryInfo, type XenopsdMethods } from '@xenops/core';
import { updatesHandlers } from '../updates/methods.js';
import { debugHandlers } from './debug.js';
import { deviceHandlers } from './devices.js';
import { hostHandlers } from './host.js';
import { UNIMPLEMENTED, type GatewayContext, type Handlers } from './method.js';
import { metadataHandlers } from './metadata.js';
import { xenopsdMigrationHandlers } from './migration.js';
import { vmOperationHandlers } from './vm-operations.js';
import { addVm, cancelTask, destroyTask, destroyTaskOnFinish, listTasks, listVms, runQueued, statTask, statVm, submitOperation } from './vm-calls.js';

export const FEATURES = ['persistent-tasks', 'log-sequence-updates', 'change-stream', 'time-travel'];

export function queryInfo(gateway: GatewayContext): QueryInfo {
  return { name: 'xenops', vendor: 'xenops-ts', version: gateway.version, features: FEATURES, instance_id: gateway.instanceId };
}

/** The xenopsd dialect (API.md §5.1, §5.2): a handler for each of the 90 methods of §5 and HOST.list (§9.7) in core's table. */
export const xenopsdHandlers: Handlers<XenopsdMethods> = {
  query: async ({ gateway }) => queryInfo(gateway),

  'Task.stat': (call, a) => statTask(call, a.id, a.as_of),
  'Task.cancel': (call, a) => cancelTask(call, a.id),
  'Task.destroy': (call, a) => destroyTask(call, a.id),
  'Task.list': (call, a) => listTasks(call, a.as_of),
  'Task.destroy_on_finish': (call, a) => destroyTaskOnFinish(call, a.id),

  ...hostHandlers,

  // The xenopsd wire has no `transient`: a VM added in this dialect is never transient (§4.2).
  'VM.add': (call, a) => addVm(call, { ...a.vm, transient: false }, false),
  'VM.remove': async (call, a) => {
    await runQueued(call, a.id, { kind: 'VM.remove' });
    return null;
  },
  'VM.stat': async (call, a) => {
    const pair = await statVm(call, a.id, a.as_of);
    if (!pair) throw Errors.vmDoesNotExist(a.id);
    return pair;
  },
  'VM.exists': async (call, a) => (await statVm(call, a.id, a.as_of)) !== undefined,
  'VM.list': (call, a) => listVms(call, a.as_of),
  // `host` (extension, §9.7): where an unowned VM goes; absent, the gateway's placement policy decides.
  'VM.start': (call, a) => submitOperation(call, a.id, { kind: 'VM.start', paused: a.paused, unpause: false }, a.host === undefined ? {} : { host: a.host }),
  'VM.shutdown': (call, a) =>
    submitOperation(call, a.id, { kind: 'VM.shutdown', ...(a.delay === undefined ? {} : { delay: a.delay }), fallbackToHard: false }),
  'VM.pause': (call, a) => submitOperation(call, a.id, { kind: 'VM.pause' }),
  'VM.unpause': (call, a) => submitOperation(call, a.id, { kind: 'VM.unpause' }),
  ...vmOperationHandlers,
  ...metadataHandlers,
  ...xenopsdMigrationHandlers,
  'VM.fast_resume': UNIMPLEMENTED,

  ...deviceHandlers,
  ...updatesHandlers,
  ...debugHandlers,
  'DEBUG.shutdown': async ({ gateway }) => {
    gateway.requestShutdown();
    return null;
  },
};
