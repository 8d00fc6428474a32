/** The `UPDATES.*` methods of the xenopsd dialect (API.md §5.2, §7.7). */
import type { XenopsdMethods } from '@xenops/core';
import type { SomeHandlers } from '../methods/method.js';
import { updatesOf } from './updates-service.js';
import { inHostScope, scopeUpdates } from '../hosts/host-scope.js';

export const updatesHandlers = {
  'UPDATES.get': async ({ gateway, callerGone }, a) => {
    const result = await updatesOf(gateway.projection).get(a.last_id, a.timeout, callerGone?.());
    if (gateway.hostScope === undefined) return result;
    // A gateway scoped to one host (`--host-scope`) reports the changes of that host's VMs only.
    const { projection, hostScope } = gateway;
    return scopeUpdates(
      result,
      (vmId) => inHostScope(projection.vms.get(vmId), hostScope),
      (taskId) => projection.tasks.get(taskId)?.vmId,
    );
  },
  'UPDATES.last_id': async ({ gateway }) => updatesOf(gateway.projection).lastId(),
  'UPDATES.inject_barrier': async ({ gateway, dbg }, a) => {
    await updatesOf(gateway.projection).injectBarrier(dbg, a.vm_id, a.id);
    return null;
  },
  'UPDATES.remove_barrier': async ({ gateway, dbg }, a) => {
    await updatesOf(gateway.projection).removeBarrier(dbg, a.id);
    return null;
  },
  'UPDATES.refresh_vm': async ({ gateway, dbg }, a) => {
    await updatesOf(gateway.projection).refreshVm(dbg, a.id);
    return null;
  },
} satisfies SomeHandlers<XenopsdMethods>;
