import { Errors, powerStateOf, type Operation, type VmAggregate, type XenopsError } from '@xenops/core';
import type { Atom } from './atom.js';

/** An operation expanded against the VM's state at the moment it reaches the head of its queue. */
export type Plan =
  | { readonly ok: true; readonly atoms: readonly Atom[]; readonly onFailure: FailurePolicy }
  | { readonly ok: false; readonly error: XenopsError };

/**
 * What a failure part-way leaves behind (§7.3): `check` queues a state check that tears down a
 * domain that never became survivable; `none` is for the low-level calls that run one atom.
 */
export type FailurePolicy = 'check' | 'none';

const teardown: readonly Atom[] = [{ kind: 'VM_pause', bestEffort: true }, { kind: 'VM_destroy_device_model' }, { kind: 'VM_destroy' }];

export function planOperation(op: Operation, vm: VmAggregate): Plan {
  if (!vm.config) return { ok: false, error: Errors.vmDoesNotExist(vm.id) };
  const power = powerStateOf(vm);
  switch (op.kind) {
    case 'VM.start': {
      if (power !== 'Halted') return { ok: false, error: Errors.badPowerState(power, 'Halted') };
      const atoms: Atom[] = [
        { kind: 'VM_create' },
        { kind: 'VM_build', force: op.paused },
        { kind: 'VM_create_device_model', saveState: false },
        { kind: 'VM_mark_survivable' },
      ];
      if (op.unpause) atoms.push({ kind: 'VM_unpause' });
      return { ok: true, atoms, onFailure: 'check' };
    }
    case 'VM.shutdown': {
      if (!vm.domain) return { ok: true, atoms: [], onFailure: 'none' };
      const atoms: Atom[] = [];
      if (op.delay !== undefined) atoms.push({ kind: 'VM_shutdown_domain', reason: 'poweroff', delay: Math.max(0, op.delay) });
      atoms.push(...teardown);
      if (vm.config.transient) atoms.push({ kind: 'VM_remove' });
      return { ok: true, atoms, onFailure: 'check' };
    }
    case 'VM.pause':
      return { ok: true, atoms: [{ kind: 'VM_pause' }], onFailure: 'none' };
    case 'VM.unpause':
      return { ok: true, atoms: [{ kind: 'VM_unpause' }], onFailure: 'none' };
    case 'VM.remove':
      if (power !== 'Halted' && power !== 'Suspended') return { ok: false, error: Errors.badPowerState(power, 'Halted') };
      return { ok: true, atoms: [{ kind: 'VM_remove' }], onFailure: 'none' };
    case 'VM.check_state':
      // A domain that never reached VM_mark_survivable is torn down; otherwise nothing to do.
      return { ok: true, atoms: vm.domain && !vm.domain.survivable ? teardown : [], onFailure: 'none' };
  }
}

/** The seed dialect's clean shutdown falls back to a hard power-off when the guest does not cooperate (§7.4). */
export function isGuestShutdownFailure(e: XenopsError): boolean {
  return e.tag === 'Failed_to_acknowledge_shutdown_request' || e.tag === 'Failed_to_shutdown';
}
