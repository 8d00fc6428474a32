import { Errors, physicalPowerStateOf, type Action, type Operation, type PowerState, type VmAggregate, type XenopsError } from '@xenops/core';
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

/** teardown (§7.3): pause (best effort), device model, domain. Devices join with the devices issue. */
export const teardown: readonly Atom[] = [{ kind: 'VM_pause', bestEffort: true }, { kind: 'VM_destroy_device_model' }, { kind: 'VM_destroy' }];

function startAtoms(paused: boolean): Atom[] {
  return [
    { kind: 'VM_create' },
    { kind: 'VM_build', force: paused },
    { kind: 'VM_create_device_model', saveState: false },
    { kind: 'VM_mark_survivable' },
  ];
}

const ok = (atoms: readonly Atom[], onFailure: FailurePolicy = 'none'): Plan => ({ ok: true, atoms, onFailure });
const refuse = (error: XenopsError): Plan => ({ ok: false, error });

function require(power: PowerState, allowed: readonly PowerState[], expected: PowerState): XenopsError | undefined {
  return allowed.includes(power) ? undefined : Errors.badPowerState(power, expected);
}

export function planOperation(op: Operation, vm: VmAggregate): Plan {
  // An import writes the configuration (creating the VM if needed); a running VM keeps running (§7.9).
  if (op.kind === 'VM.import_metadata') return ok([{ kind: 'VM_import_config', configJson: op.configJson }]);
  if (!vm.config) return refuse(Errors.vmDoesNotExist(vm.id));
  const power = physicalPowerStateOf(vm);
  const removeIfTransient: Atom[] = vm.config.transient ? [{ kind: 'VM_remove' }] : [];
  let refused: XenopsError | undefined;
  switch (op.kind) {
    case 'VM.start':
      if ((refused = require(power, ['Halted'], 'Halted'))) return refuse(refused);
      return ok([...startAtoms(op.paused), ...(op.unpause ? [{ kind: 'VM_unpause' } as const] : [])], 'check');
    case 'VM.shutdown': {
      if (!vm.domain) return ok(vm.suspendImage ? [{ kind: 'VM_drop_suspend_image' }] : []);
      const ask: Atom[] = op.delay === undefined ? [] : [{ kind: 'VM_shutdown_domain', reason: 'poweroff', delay: Math.max(0, op.delay) }];
      return ok([...ask, ...teardown, ...removeIfTransient], 'check');
    }
    case 'VM.reboot': {
      if ((refused = require(power, ['Running', 'Paused'], 'Running'))) return refuse(refused);
      const ask: Atom[] = op.delay === undefined ? [] : [{ kind: 'VM_shutdown_domain', reason: 'reboot', delay: Math.max(0, op.delay) }];
      return ok([...ask, ...teardown, ...startAtoms(false), { kind: 'VM_unpause' }], 'check');
    }
    case 'VM.suspend':
      if ((refused = require(power, ['Running', 'Paused'], 'Running'))) return refuse(refused);
      return ok([{ kind: 'VM_save', disk: op.disk }, ...teardown], 'check');
    case 'VM.resume':
      if ((refused = require(power, ['Suspended'], 'Suspended'))) return refuse(refused);
      return ok(
        [
          { kind: 'VM_create' },
          { kind: 'VM_restore', disk: op.disk },
          { kind: 'VM_create_device_model', saveState: true },
          { kind: 'VM_mark_survivable' },
          ...(op.unpause ? [{ kind: 'VM_unpause' } as const] : []),
        ],
        'check',
      );
    case 'VM.pause':
      return ok([{ kind: 'VM_pause' }]);
    case 'VM.unpause':
      return ok([{ kind: 'VM_unpause' }]);
    case 'VM.remove':
      if ((refused = require(power, ['Halted', 'Suspended'], 'Halted'))) return refuse(refused);
      return ok([{ kind: 'VM_remove' }]);
    case 'VM.create':
      return ok([{ kind: 'VM_create' }]);
    case 'VM.build':
      return ok([{ kind: 'VM_build', force: op.force }]);
    case 'VM.create_device_model':
      return ok([{ kind: 'VM_create_device_model', saveState: op.saveState }]);
    case 'VM.destroy':
      return ok([{ kind: 'VM_destroy' }]);
    case 'VM.set_vcpus':
      return ok([{ kind: 'VM_set_vcpus', vcpus: op.vcpus }]);
    case 'VM.set_shadow_multiplier':
      return ok([{ kind: 'VM_set_shadow_multiplier', multiplier: op.multiplier }]);
    case 'VM.set_memory_dynamic_range':
      return ok([{ kind: 'VM_set_memory_dynamic_range', minimum: op.minimum, maximum: op.maximum }]);
    case 'VM.set_xsdata':
      return ok([{ kind: 'VM_set_xsdata', xsdata: op.xsdata }]);
    case 'VM.delay':
      return ok([{ kind: 'VM_delay', seconds: op.delay }]);
    case 'VM.request_rdp':
    case 'VM.s3suspend':
    case 'VM.s3resume':
      return ok([{ kind: 'VM_noop', name: op.kind }]);
    case 'VM.run_script':
      return ok([{ kind: 'VM_run_script', script: op.script }]);
    case 'VM.guest_action':
      return vm.domain ? ok(guestActionAtoms(op.actions, removeIfTransient), 'check') : ok([]);
    case 'VM.check_state':
      // A domain that never reached VM_mark_survivable is torn down; otherwise nothing to do.
      return ok(vm.domain && !vm.domain.survivable ? teardown : []);
  }
}

/** §7.5: each action in list order; after a Shutdown there is no domain left to act on. */
function guestActionAtoms(actions: readonly Action[], removeIfTransient: readonly Atom[]): Atom[] {
  const atoms: Atom[] = [];
  for (const action of actions) {
    switch (action) {
      case 'Coredump':
      case 'Softreboot':
        break;
      case 'Shutdown':
        atoms.push(...teardown, ...removeIfTransient);
        return atoms;
      case 'Start':
        atoms.push(...teardown, ...startAtoms(false), { kind: 'VM_unpause' });
        break;
      case 'Pause':
        atoms.push({ kind: 'VM_pause', bestEffort: true });
        break;
    }
  }
  return atoms;
}

/** The seed dialect's clean shutdown falls back to a hard power-off when the guest does not cooperate (§7.4). */
export function isGuestShutdownFailure(e: XenopsError): boolean {
  return e.tag === 'Failed_to_acknowledge_shutdown_request' || e.tag === 'Failed_to_shutdown';
}
