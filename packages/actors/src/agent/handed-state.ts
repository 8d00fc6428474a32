import { deserialize, serialize } from 'node:v8';
import { DEVICE_KINDS, type VmAggregate } from '@xenops/core';

/**
 * The VM as the source of a migration left it at its switch-over (API.md §7.8), sent with the
 * wake-up so that the destination need not read the VM's stream again: it checks that the log's
 * last message of the stream is the one this state folded, and otherwise reads the stream. Encoded
 * as the fold snapshots are (structured clone: the device tables are Maps).
 */
export function encodeHandedState(vm: VmAggregate): string {
  return serialize(vm).toString('base64');
}

/**
 * The state a wake-up carried, if it is one: a message of the bus is a boundary, so anything that
 * is not a VM record of this VM, with this task passed to this host, is ignored (the destination
 * then reads the log, as without it).
 */
export function decodeHandedState(encoded: string, vmId: string, taskId: string, hostId: string): VmAggregate | undefined {
  let v: unknown;
  try {
    v = deserialize(Buffer.from(encoded, 'base64'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const vm = v as Partial<VmAggregate>;
  if (vm.id !== vmId || !Number.isSafeInteger(vm.version) || !Array.isArray(vm.queue)) return undefined;
  if (typeof vm.devices !== 'object' || vm.devices === null || !DEVICE_KINDS.every((k) => vm.devices![k] instanceof Map)) return undefined;
  const running = vm.running;
  if (!running || running.taskId !== taskId || running.host !== hostId || running.migration?.handedOver !== true) return undefined;
  return vm as VmAggregate;
}
