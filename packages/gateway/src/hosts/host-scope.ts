/**
 * `--host-scope ID` (issue 14 item 7): a gateway that shows one host's VMs only, as a xapi-style
 * toolstack expects of its local xenopsd. A VM is in scope when that host owns it, or when it is
 * free (no host owns it, API.md §9.7) and was last owned by that host or by none: a free VM may be
 * started by any host, so every scoped view shows it until another host takes it.
 */
import { ownerOf, type DynamicId, type UpdatesResult, type VmAggregate } from '@xenops/core';

export function inHostScope(vm: VmAggregate | undefined, scope: string | undefined): boolean {
  if (scope === undefined) return true;
  if (!vm) return false;
  const owner = ownerOf(vm);
  if (owner !== undefined) return owner === scope;
  return vm.owner === undefined || vm.owner === scope;
}

/** The VM a dynamic id is about (a task's: its VM's). */
function vmOfId(id: DynamicId, taskVm: (taskId: string) => string | undefined): string | undefined {
  if (typeof id === 'string') return undefined;
  const [kind, value] = id;
  if (kind === 'Vm') return value as string;
  if (kind === 'Task') return taskVm(value as string);
  return (value as [string, string])[0];
}

/** An UPDATES.get result without the ids of VMs (and their devices and tasks) out of scope. */
export function scopeUpdates(
  result: UpdatesResult,
  keep: (vmId: string) => boolean,
  taskVm: (taskId: string) => string | undefined,
): UpdatesResult {
  const visible = (id: DynamicId) => {
    const vm = vmOfId(id, taskVm);
    return vm === undefined || keep(vm);
  };
  const [barriers, ids, next] = result;
  return [barriers.map(([b, entries]) => [b, entries.filter(visible)]), ids.filter(visible), next];
}
