import { bool, dict, DiskT, float, int, option, string, VmIdT, VmT, type Disk, type Operation } from '@xenops/core';
import type { ArgSpec } from '../dispatch/args.js';
import { method, type CallContext, type MethodSpec } from './method.js';
import { submitOperation } from './vm-calls.js';

const vmId: ArgSpec = { key: 'id', type: VmIdT };

/** A **T** method: decode arguments into an operation and queue it on the VM (§5.2, §7.3). */
function taskMethod(name: string, args: readonly ArgSpec[], toOperation: (a: Record<string, unknown>) => Operation): MethodSpec {
  return method(name, [vmId, ...args], string, (call: CallContext, a) => submitOperation(call, a.id as string, toOperation(a)));
}

const disk = (d: unknown) => d as Disk as readonly ['Local' | 'VDI', string];
const optionalDelay = (a: Record<string, unknown>) => (a.delay === undefined ? {} : { delay: a.delay as number });

/** The xenopsd dialect's VM operations that return a task (API.md §5.2). */
export const vmOperationMethods: readonly MethodSpec[] = [
  taskMethod('VM.create', [], () => ({ kind: 'VM.create' })),
  taskMethod('VM.build', [{ key: 'force', type: bool }], (a) => ({ kind: 'VM.build', force: a.force as boolean })),
  taskMethod('VM.create_device_model', [{ key: 'save_state', type: bool }], (a) => ({
    kind: 'VM.create_device_model',
    saveState: a.save_state as boolean,
  })),
  taskMethod('VM.destroy', [], () => ({ kind: 'VM.destroy' })),
  taskMethod('VM.request_rdp', [{ key: 'enabled', type: bool }], (a) => ({ kind: 'VM.request_rdp', enabled: a.enabled as boolean })),
  taskMethod('VM.run_script', [{ key: 'script', type: string }], (a) => ({ kind: 'VM.run_script', script: a.script as string })),
  taskMethod('VM.set_xsdata', [{ key: 'xsdata', type: dict(string) }], (a) => ({
    kind: 'VM.set_xsdata',
    xsdata: a.xsdata as Array<[string, string]>,
  })),
  taskMethod('VM.set_vcpus', [{ key: 'vcpus', type: int }], (a) => ({ kind: 'VM.set_vcpus', vcpus: a.vcpus as number })),
  taskMethod('VM.set_shadow_multiplier', [{ key: 'multiplier', type: float }], (a) => ({
    kind: 'VM.set_shadow_multiplier',
    multiplier: a.multiplier as number,
  })),
  taskMethod(
    'VM.set_memory_dynamic_range',
    [
      { key: 'minimum', type: int },
      { key: 'maximum', type: int },
    ],
    (a) => ({ kind: 'VM.set_memory_dynamic_range', minimum: a.minimum as number, maximum: a.maximum as number }),
  ),
  taskMethod('VM.delay', [{ key: 'delay', type: float }], (a) => ({ kind: 'VM.delay', delay: a.delay as number })),
  taskMethod('VM.reboot', [{ key: 'delay', type: option(float) }], (a) => ({ kind: 'VM.reboot', ...optionalDelay(a), fallbackToHard: false })),
  taskMethod('VM.suspend', [{ key: 'suspend_vdi', type: DiskT }], (a) => ({ kind: 'VM.suspend', disk: disk(a.suspend_vdi) })),
  taskMethod('VM.resume', [{ key: 'suspend_vdi', type: DiskT }], (a) => ({ kind: 'VM.resume', disk: disk(a.suspend_vdi), unpause: false })),
  taskMethod('VM.s3suspend', [], () => ({ kind: 'VM.s3suspend' })),
  taskMethod('VM.s3resume', [], () => ({ kind: 'VM.s3resume' })),
  // The simulator has no state to serialise (§5.2).
  method('VM.generate_state_string', [{ key: 'vm', type: VmT }], string, async () => ''),
];

/** The seed dialect's task methods (API.md §5.4): the same engine operations with seed semantics. */
export const seedOperationMethods: readonly MethodSpec[] = [
  taskMethod('Vm.create', [], () => ({ kind: 'VM.create' })),
  taskMethod('Vm.build', [], () => ({ kind: 'VM.build', force: false })),
  taskMethod('Vm.create_device_model', [{ key: 'is_resuming', type: bool }], (a) => ({
    kind: 'VM.create_device_model',
    saveState: a.is_resuming as boolean,
  })),
  taskMethod('Vm.destroy', [], () => ({ kind: 'VM.destroy' })),
  taskMethod('Vm.set_vcpus', [{ key: 'num_vpcus', type: int }], (a) => ({ kind: 'VM.set_vcpus', vcpus: a.num_vpcus as number })),
  taskMethod('Vm.set_shadow_multiplier', [{ key: 'shadow_multiplier', type: float }], (a) => ({
    kind: 'VM.set_shadow_multiplier',
    multiplier: a.shadow_multiplier as number,
  })),
  taskMethod('Vm.reboot', [{ key: 'clean_shutdown_timeout', type: option(float) }], (a) => ({
    kind: 'VM.reboot',
    ...(a.clean_shutdown_timeout === undefined ? {} : { delay: a.clean_shutdown_timeout as number }),
    fallbackToHard: true,
  })),
  taskMethod('Vm.suspend', [{ key: 'disk', type: DiskT }], (a) => ({ kind: 'VM.suspend', disk: disk(a.disk) })),
  taskMethod('Vm.resume', [{ key: 'disk', type: DiskT }], (a) => ({ kind: 'VM.resume', disk: disk(a.disk), unpause: true })),
  taskMethod('Vm.s3suspend', [], () => ({ kind: 'VM.s3suspend' })),
  taskMethod('Vm.s3resume', [], () => ({ kind: 'VM.s3resume' })),
];
