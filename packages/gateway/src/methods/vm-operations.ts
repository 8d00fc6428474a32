import type { Operation, SeedMethods, XenopsdMethods } from '@xenops/core';
import type { CallContext, SomeHandlers } from './method.js';
import { submitOperation } from './vm-calls.js';

/** A **T** method: its arguments made into an operation, queued on the VM (§5.2, §7.3). */
function queue<A extends { readonly id: string }>(toOperation: (a: A) => Operation): (call: CallContext, a: A) => Promise<string> {
  return (call, a) => submitOperation(call, a.id, toOperation(a));
}

const optionalDelay = (delay: number | undefined) => (delay === undefined ? {} : { delay });

/** The xenopsd dialect's VM operations that return a task (API.md §5.2). */
export const vmOperationHandlers = {
  'VM.create': queue(() => ({ kind: 'VM.create' })),
  'VM.build': queue((a) => ({ kind: 'VM.build', force: a.force })),
  'VM.create_device_model': queue((a) => ({ kind: 'VM.create_device_model', saveState: a.save_state })),
  'VM.destroy': queue(() => ({ kind: 'VM.destroy' })),
  'VM.request_rdp': queue((a) => ({ kind: 'VM.request_rdp', enabled: a.enabled })),
  'VM.run_script': queue((a) => ({ kind: 'VM.run_script', script: a.script })),
  'VM.set_xsdata': queue((a) => ({ kind: 'VM.set_xsdata', xsdata: a.xsdata })),
  'VM.set_vcpus': queue((a) => ({ kind: 'VM.set_vcpus', vcpus: a.vcpus })),
  'VM.set_shadow_multiplier': queue((a) => ({ kind: 'VM.set_shadow_multiplier', multiplier: a.multiplier })),
  'VM.set_memory_dynamic_range': queue((a) => ({ kind: 'VM.set_memory_dynamic_range', minimum: a.minimum, maximum: a.maximum })),
  'VM.delay': queue((a) => ({ kind: 'VM.delay', delay: a.delay })),
  'VM.reboot': queue((a) => ({ kind: 'VM.reboot', ...optionalDelay(a.delay), fallbackToHard: false })),
  'VM.suspend': queue((a) => ({ kind: 'VM.suspend', disk: a.suspend_vdi })),
  'VM.resume': (call, a) => submitOperation(call, a.id, { kind: 'VM.resume', disk: a.suspend_vdi, unpause: false }, a.host === undefined ? {} : { host: a.host }),
  'VM.s3suspend': queue(() => ({ kind: 'VM.s3suspend' })),
  'VM.s3resume': queue(() => ({ kind: 'VM.s3resume' })),
  // The simulator has no state to serialise (§5.2).
  'VM.generate_state_string': async () => '',
} satisfies SomeHandlers<XenopsdMethods>;

/** The seed dialect's task methods (API.md §5.4): the same engine operations with seed semantics. */
export const seedOperationHandlers = {
  'Vm.create': queue(() => ({ kind: 'VM.create' })),
  'Vm.build': queue(() => ({ kind: 'VM.build', force: false })),
  'Vm.create_device_model': queue((a) => ({ kind: 'VM.create_device_model', saveState: a.is_resuming })),
  'Vm.destroy': queue(() => ({ kind: 'VM.destroy' })),
  'Vm.set_vcpus': queue((a) => ({ kind: 'VM.set_vcpus', vcpus: a.num_vpcus })),
  'Vm.set_shadow_multiplier': queue((a) => ({ kind: 'VM.set_shadow_multiplier', multiplier: a.shadow_multiplier })),
  'Vm.reboot': queue((a) => ({ kind: 'VM.reboot', ...optionalDelay(a.clean_shutdown_timeout), fallbackToHard: true })),
  'Vm.suspend': queue((a) => ({ kind: 'VM.suspend', disk: a.disk })),
  'Vm.resume': queue((a) => ({ kind: 'VM.resume', disk: a.disk, unpause: true })),
  'Vm.s3suspend': queue(() => ({ kind: 'VM.s3suspend' })),
  'Vm.s3resume': queue(() => ({ kind: 'VM.s3resume' })),
} satisfies SomeHandlers<SeedMethods>;
