import { Errors, XenopsError, type PowerState } from '../errors.js';
import type { Action } from '../idl/index.js';
import { deviceDneKey } from '../model/devices.js';
import type { Operation } from '../model/operation.js';
import { physicalPowerStateOf, type VmAggregate } from '../model/vm-aggregate.js';
import { atomWeight, type Atom } from './atom.js';
import { migrationMaps } from './atom-semantics.js';
import { ownerOf } from './ownership.js';
import { plugDevicesAtoms, plugPcisAtoms, teardownAtoms, vbdPlugAtoms, vifPlugAtoms } from './devices-plan.js';

/** An operation expanded against the VM's state at the moment it reaches the head of its queue. */
export type Plan =
  | {
      readonly ok: true;
      readonly atoms: readonly Atom[];
      readonly onFailure: FailurePolicy;
      /** Best-effort atoms that undo the first steps when a later one fails (a refused plug). */
      readonly compensate?: readonly Atom[];
      /** How much of the task was done before these atoms (a migration's destination part, §7.8). */
      readonly progressFrom?: number;
    }
  | { readonly ok: false; readonly error: XenopsError };

/**
 * What a failure part-way leaves behind (§7.3): `check` queues a state check that tears down a
 * domain that never became survivable; `none` is for the low-level calls that run one atom.
 */
export type FailurePolicy = 'check' | 'none';

function startAtoms(vm: VmAggregate, paused: boolean): Atom[] {
  return [
    { kind: 'VM_create' },
    { kind: 'VM_build', force: paused },
    ...plugDevicesAtoms(vm),
    { kind: 'VM_create_device_model', saveState: false },
    ...plugPcisAtoms(vm),
    { kind: 'VM_mark_survivable' },
  ];
}

const ok = (atoms: readonly Atom[], onFailure: FailurePolicy = 'none'): Plan => ({ ok: true, atoms, onFailure });
const refuse = (error: XenopsError): Plan => ({ ok: false, error });

function require(power: PowerState, allowed: readonly PowerState[], expected: PowerState): XenopsError | undefined {
  return allowed.includes(power) ? undefined : Errors.badPowerState(power, expected);
}

export function planOperation(op: Operation, vm: VmAggregate): Plan {
  if (op.kind === 'HOST.evacuate') return refuse(Errors.internal('HOST.evacuate is run by a gateway, never on a VM queue'));
  // An import writes the configuration (creating the VM if needed); a running VM keeps running (§7.9).
  if (op.kind === 'VM.import_metadata') return ok([{ kind: 'VM_import_metadata', metadataJson: op.metadataJson }]);
  if (!vm.config) return refuse(Errors.vmDoesNotExist(vm.id));
  const power = physicalPowerStateOf(vm);
  const teardown = teardownAtoms(vm);
  const removeIfTransient: Atom[] = vm.config.transient ? [{ kind: 'VM_remove' }] : [];
  let refused: XenopsError | undefined;
  switch (op.kind) {
    case 'VM.start':
      if ((refused = require(power, ['Halted'], 'Halted'))) return refuse(refused);
      return ok([...startAtoms(vm, op.paused), ...(op.unpause ? [{ kind: 'VM_unpause' } as const] : [])], 'check');
    case 'VM.shutdown': {
      if (!vm.domain) return ok(vm.suspendImage ? [{ kind: 'VM_drop_suspend_image' }] : []);
      const ask: Atom[] = op.delay === undefined ? [] : [{ kind: 'VM_shutdown_domain', reason: 'poweroff', delay: Math.max(0, op.delay) }];
      return ok([...ask, ...teardown, ...removeIfTransient], 'check');
    }
    case 'VM.reboot': {
      if ((refused = require(power, ['Running', 'Paused'], 'Running'))) return refuse(refused);
      const ask: Atom[] = op.delay === undefined ? [] : [{ kind: 'VM_shutdown_domain', reason: 'reboot', delay: Math.max(0, op.delay) }];
      return ok([...ask, ...teardown, ...startAtoms(vm, false), { kind: 'VM_unpause' }], 'check');
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
          ...plugDevicesAtoms(vm),
          { kind: 'VM_create_device_model', saveState: true },
          ...plugPcisAtoms(vm),
          { kind: 'VM_mark_survivable' },
          ...(op.unpause ? [{ kind: 'VM_unpause' } as const] : []),
        ],
        'check',
      );
    case 'VM.migrate':
      if ((refused = require(power, ['Running', 'Paused'], 'Running'))) return refuse(refused);
      return planMigration(op, vm, teardown);
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
      return vm.domain ? ok(guestActionAtoms(vm, op.actions, teardown, removeIfTransient), 'check') : ok([]);
    case 'VBD.plug':
    case 'VBD.unplug':
    case 'VBD.eject':
    case 'VBD.insert':
    case 'VIF.plug':
    case 'VIF.unplug':
    case 'VIF.set':
      return planDeviceOperation(op, vm, power);
    case 'VM.check_state':
      // A domain that never reached VM_mark_survivable is torn down; otherwise nothing to do.
      return ok(vm.domain && !vm.domain.survivable ? teardown : []);
  }
}

/**
 * VM.migrate on its source (§7.8): the live save streamed to the destination, the teardown of the
 * old domain, the switch-over; then the destination's atoms, here too when it is this same host
 * (localhost migration), else run by the destination's agent once it has the VM (`planMigrationReceive`).
 */
function planMigration(op: Extract<Operation, { kind: 'VM.migrate' }>, vm: VmAggregate, teardown: readonly Atom[]): Plan {
  try {
    migrationMaps(op);
  } catch (e) {
    if (e instanceof XenopsError) return refuse(e);
    throw e;
  }
  const localhost = op.destination === ownerOf(vm);
  const receive = migrationReceiveAtoms(vm, vm.domain?.paused ?? false);
  const send: Atom[] = [{ kind: 'VM_migrate_send', destination: op.destination, url: op.url }, ...teardown];
  const sentWeight = send.reduce((sum, a) => sum + atomWeight(a), 0) + 1;
  const progress = sentWeight / (sentWeight + receive.reduce((sum, a) => sum + atomWeight(a), 0));
  const handover: Atom = { kind: 'VM_migrate_handover', destination: op.destination, progress, vdiMap: op.vdiMap, vifMapJson: op.vifMapJson, pciMapJson: op.pciMapJson };
  return ok(localhost ? [...send, handover, ...receive] : [...send, handover], 'check');
}

/** The destination's part of a migration (§7.8): a new domain restored from the received state. */
function migrationReceiveAtoms(vm: VmAggregate, wasPaused: boolean): Atom[] {
  return [
    { kind: 'VM_create' },
    { kind: 'VM_migrate_receive' },
    ...plugDevicesAtoms(vm),
    { kind: 'VM_create_device_model', saveState: true },
    ...plugPcisAtoms(vm),
    { kind: 'VM_mark_survivable' },
    ...(wasPaused ? [] : [{ kind: 'VM_unpause' } as const]),
  ];
}

/** The plan of a migration's destination, once the VM has passed to it with its running task. */
export function planMigrationReceive(vm: VmAggregate): Plan {
  const migration = vm.running?.migration;
  if (!migration?.handedOver) return refuse(Errors.internal(`VM ${vm.id} has no migration to receive`));
  return { ok: true, atoms: migrationReceiveAtoms(vm, migration.wasPaused), onFailure: 'check', progressFrom: migration.progress };
}

type DeviceOperation = Extract<Operation, { kind: `VBD.${string}` | `VIF.${string}` }>;

/** Device operations (§7.3, §7.6): their preconditions fail the task without any cleanup. */
function planDeviceOperation(op: DeviceOperation, vm: VmAggregate, power: PowerState): Plan {
  const isVbd = op.kind.startsWith('VBD.');
  const kind = isVbd ? 'vbd' : 'vif';
  const entry = vm.devices[kind].get(op.dev);
  if (!entry) return refuse(Errors.doesNotExist(...deviceDneKey(kind, vm.id, op.dev)));
  switch (op.kind) {
    case 'VBD.plug':
    case 'VIF.plug':
      if (!vm.domain) return refuse(Errors.domainDoesNotExist(vm.id));
      if (entry.plugged) return refuse(Errors.deviceIsConnected());
      // A plug refused part-way (a position clash) must leave the device as it was: inactive.
      return {
        ...(ok(op.kind === 'VBD.plug' ? vbdPlugAtoms(vm.devices.vbd.get(op.dev)!.config, []) : vifPlugAtoms(vm.devices.vif.get(op.dev)!.config)) as Extract<Plan, { ok: true }>),
        compensate: [{ kind: op.kind === 'VBD.plug' ? 'VBD_set_active' : 'VIF_set_active', dev: op.dev, active: entry.active }],
      };
    case 'VBD.unplug': {
      if (!entry.plugged) return refuse(Errors.deviceNotConnected());
      const vbd = vm.devices.vbd.get(op.dev)!.config;
      return ok([
        { kind: 'VBD_unplug', dev: op.dev, force: op.force },
        ...(vbd.backend ? [{ kind: 'VBD_epoch_end', dev: op.dev } as const] : []),
        { kind: 'VBD_set_active', dev: op.dev, active: false },
      ]);
    }
    case 'VIF.unplug':
      if (!entry.plugged) return refuse(Errors.deviceNotConnected());
      return ok([
        { kind: 'VIF_unplug', dev: op.dev, force: op.force },
        { kind: 'VIF_set_active', dev: op.dev, active: false },
      ]);
    case 'VBD.eject': {
      // Media_not_ejectable is checked before the power state (§7.6).
      if (vm.devices.vbd.get(op.dev)!.config.ty === 'Disk') return refuse(Errors.mediaNotEjectable());
      let refused: XenopsError | undefined;
      if ((refused = require(power, ['Running', 'Paused'], 'Running'))) return refuse(refused);
      return ok([{ kind: 'VBD_eject', dev: op.dev }]);
    }
    case 'VBD.insert': {
      let refused: XenopsError | undefined;
      if ((refused = require(power, ['Running', 'Paused'], 'Running'))) return refuse(refused);
      return ok([{ kind: 'VBD_insert', dev: op.dev, disk: op.disk }]);
    }
    case 'VIF.set':
      return ok([{ kind: 'VIF_set', dev: op.dev, field: op.field, valueJson: op.valueJson }]);
  }
  return refuse(Errors.internal(`unknown device operation ${(op as Operation).kind}`));
}

/** §7.5: each action in list order; after a Shutdown there is no domain left to act on. */
function guestActionAtoms(vm: VmAggregate, actions: readonly Action[], teardown: readonly Atom[], removeIfTransient: readonly Atom[]): Atom[] {
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
        atoms.push(...teardown, ...startAtoms(vm, false), { kind: 'VM_unpause' });
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
