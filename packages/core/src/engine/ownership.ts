import { XenopsError, type ErrorValue } from '../errors.js';
import type { VmAggregate } from '../model/vm-aggregate.js';

/**
 * Who owns a VM (ARCHITECTURE.md "One writer per stream", API.md §9.7): the host whose agent
 * alone writes its stream and runs its operations. A VM that has nothing on any host (no domain,
 * no suspend image, no queued or running task) is free: "no owner until started", and any agent
 * may claim it. Ownership moves only by a `VmOwnerChanged` event on the VM's stream.
 *
 * Logs written before ownership was recorded have no `VmOwnerChanged`: their VMs belong to the
 * host of their domain, else of their running or queued task.
 */
export function ownerOf(vm: VmAggregate | undefined): string | undefined {
  if (!vm || (!vm.domain && !vm.suspendImage && !vm.running && vm.queue.length === 0)) return undefined;
  return vm.owner ?? vm.domain?.host ?? vm.running?.host ?? vm.queue[0]?.host;
}

/**
 * Whether `host` is the VM's recorded owner, free or not (a legacy VM without a recorded owner
 * counts as its effective owner's): the VMs an agent keeps in its own snapshot.
 */
export function isRecordedOwner(vm: VmAggregate, host: string): boolean {
  return vm.owner === undefined ? ownerOf(vm) === host : vm.owner === host;
}

const NOT_OWNER = /^VM ([\s\S]*) is owned by host ([\s\S]*); this is host ([\s\S]*)$/;

/** The refusal of a command by an agent that does not own the VM (the gateway routes again). */
export function notOwnerError(vmId: string, owner: string, me: string): XenopsError {
  return new XenopsError(['Internal_error', `VM ${vmId} is owned by host ${owner}; this is host ${me}`]);
}

/** The owner a `notOwnerError` names, if `error` is one. */
export function ownerNamedBy(error: ErrorValue): string | undefined {
  if (typeof error === 'string' || error[0] !== 'Internal_error' || typeof error[1] !== 'string') return undefined;
  return NOT_OWNER.exec(error[1])?.[2];
}
