/** The xenopsd dialect's 90 methods (API.md §5.1, §5.2), HOST.list and HOST.evacuate (§9.7), declared once: see method-declaration.ts. */
import { bool, dict, float, int, list, option, string, tuple, unit } from '../idl/descriptor.js';
import {
  Ipv4ConfigurationT,
  Ipv6ConfigurationT,
  LockingModeT,
  PciStateT,
  PciT,
  PvsProxyT,
  VbdStateT,
  VbdT,
  VgpuStateT,
  VgpuT,
  VifStateT,
  VifT,
  VusbStateT,
  VusbT,
} from '../idl/devices.js';
import { UpdatesResultT } from '../idl/dynamic.js';
import { GuestAgentFeatureT, HostRecordT, HostT, NumaAffinityPolicyT, QueryT } from '../idl/host.js';
import { DeviceIdT, DiskT, NetworkT, PciAddressT, VmIdT } from '../idl/shared.js';
import { TaskT } from '../idl/task.js';
import { VmStateT, VmT } from '../idl/vm.js';
import type { Type } from '../idl/descriptor.js';
import { arg, declareIn, tableOf } from './method-declaration.js';

const method = declareIn('xenopsd');

const vmId = arg('id', VmIdT);
const taskId = arg('id', string);
const deviceId = arg('id', DeviceIdT);
const asOf = arg('as_of', option(int), { namedOnly: true });
const unitArg = arg('unit', unit);
/**
 * Where VM.start / VM.resume put an unowned VM (API.md §9.7, extension): named form only, so that
 * a positional caller of the table's arguments never passes it by accident.
 */
const placementHost = arg('host', option(string), { namedOnly: true });
/** A task id: what a **T** method answers at once. */
const task = string;
export const VmPairT = tuple(VmT, VmStateT);

/** stat / list / remove, alike for every device kind (§5.2). */
function deviceCommon<const Module extends string, C, S>(module: Module, config: Type<C>, state: Type<S>) {
  const pair = tuple(config, state);
  return [
    method(`${module}.stat`, [deviceId, asOf], pair),
    method(`${module}.list`, [vmId, asOf], list(pair)),
    method(`${module}.remove`, [deviceId], unit),
  ] as const;
}

export const xenopsdMethodList = [
  method('query', [unitArg], QueryT),
  method('get_diagnostics', [unitArg], string),

  method('Task.stat', [taskId, asOf], TaskT),
  method('Task.cancel', [taskId], unit),
  method('Task.destroy', [taskId], unit),
  method('Task.list', [asOf], list(TaskT)),
  method('Task.destroy_on_finish', [taskId], unit),

  method('HOST.stat', [], HostT),
  method('HOST.get_console_data', [], string),
  method('HOST.get_total_memory_mib', [], int),
  method('HOST.send_debug_keys', [arg('debug_keys', string)], unit),
  method('HOST.set_worker_pool_size', [arg('pool_size', int)], unit),
  method('HOST.update_guest_agent_features', [arg('features', list(GuestAgentFeatureT))], unit),
  method('HOST.combine_cpu_policies', [arg('policy1', string), arg('policy2', string)], string),
  method('HOST.is_compatible', [arg('vm_policy', string), arg('host_policy', string)], bool),
  method('HOST.set_numa_affinity_policy', [arg('numa_affinity_policy', option(NumaAffinityPolicyT))], unit),
  // Extension (§9.7): the hosts of the cluster.
  method('HOST.list', [], list(HostRecordT)),
  // Extension (§9.7): every VM of a host live-migrated to others, one VM.migrate task each.
  method('HOST.evacuate', [arg('host', string)], task, 'task'),

  method('VM.add', [arg('vm', VmT)], VmIdT),
  method('VM.remove', [vmId], unit, 'queued'),
  method('VM.generate_state_string', [arg('vm', VmT)], string),
  method(
    'VM.migrate',
    [
      vmId,
      arg('vdi_map', dict(string)),
      arg('vif_map', dict(NetworkT)),
      arg('pci_map', dict(PciAddressT)),
      arg('xenops_url', string),
      arg('compress', bool),
      arg('verify_dest', bool),
      arg('localhost_migration', bool),
    ],
    task,
    'task',
  ),
  method('VM.create', [vmId], task, 'task'),
  method('VM.build', [vmId, arg('force', bool)], task, 'task'),
  method('VM.create_device_model', [vmId, arg('save_state', bool)], task, 'task'),
  method('VM.destroy', [vmId], task, 'task'),
  method('VM.pause', [vmId], task, 'task'),
  method('VM.unpause', [vmId], task, 'task'),
  method('VM.request_rdp', [vmId, arg('enabled', bool)], task, 'task'),
  method('VM.run_script', [vmId, arg('script', string)], task, 'task'),
  method('VM.set_xsdata', [vmId, arg('xsdata', dict(string))], task, 'task'),
  method('VM.set_vcpus', [vmId, arg('vcpus', int)], task, 'task'),
  method('VM.set_shadow_multiplier', [vmId, arg('multiplier', float)], task, 'task'),
  method('VM.set_memory_dynamic_range', [vmId, arg('minimum', int), arg('maximum', int)], task, 'task'),
  method('VM.stat', [vmId, asOf], VmPairT),
  method('VM.exists', [vmId, asOf], bool),
  method('VM.list', [unitArg, asOf], list(VmPairT)),
  method('VM.delay', [vmId, arg('delay', float)], task, 'task'),
  method('VM.start', [vmId, arg('paused', bool), placementHost], task, 'task'),
  method('VM.shutdown', [vmId, arg('delay', option(float))], task, 'task'),
  method('VM.reboot', [vmId, arg('delay', option(float))], task, 'task'),
  method('VM.suspend', [vmId, arg('suspend_vdi', DiskT)], task, 'task'),
  method('VM.resume', [vmId, arg('suspend_vdi', DiskT), placementHost], task, 'task'),
  method('VM.fast_resume', [vmId], task, 'task'),
  method('VM.s3suspend', [vmId], task, 'task'),
  method('VM.s3resume', [vmId], task, 'task'),
  method('VM.export_metadata', [vmId], string),
  // S, or S/q when the VM exists (§5.2).
  method('VM.import_metadata', [arg('metadata', string)], VmIdT),
  method('VM.import_metadata_async', [arg('metadata', string)], task, 'task'),

  method('VBD.add', [arg('vbd', VbdT)], DeviceIdT),
  method('VBD.plug', [deviceId], task, 'task'),
  method('VBD.unplug', [deviceId, arg('force', bool)], task, 'task'),
  method('VBD.eject', [deviceId], task, 'task'),
  method('VBD.insert', [deviceId, arg('disk', DiskT)], task, 'task'),
  ...deviceCommon('VBD', VbdT, VbdStateT),

  method('VIF.add', [arg('vif', VifT)], DeviceIdT),
  method('VIF.plug', [deviceId], task, 'task'),
  method('VIF.unplug', [deviceId, arg('force', bool)], task, 'task'),
  method('VIF.move', [deviceId, arg('network', NetworkT)], task, 'task'),
  method('VIF.set_carrier', [deviceId, arg('carrier', bool)], task, 'task'),
  method('VIF.set_locking_mode', [deviceId, arg('locking_mode', LockingModeT)], task, 'task'),
  method('VIF.set_ipv4_configuration', [deviceId, arg('ipv4_configuration', Ipv4ConfigurationT)], task, 'task'),
  method('VIF.set_ipv6_configuration', [deviceId, arg('ipv6_configuration', Ipv6ConfigurationT)], task, 'task'),
  method('VIF.set_pvs_proxy', [deviceId, arg('proxy', option(PvsProxyT))], task, 'task'),
  method('VIF.set_trunks', [deviceId, arg('trunks', list(int))], task, 'task'),
  ...deviceCommon('VIF', VifT, VifStateT),

  method('PCI.add', [arg('pci', PciT)], DeviceIdT),
  method('PCI.dequarantine', [arg('pci_addr', PciAddressT)], unit),
  ...deviceCommon('PCI', PciT, PciStateT),

  method('VGPU.add', [arg('vgpu', VgpuT)], DeviceIdT),
  ...deviceCommon('VGPU', VgpuT, VgpuStateT),

  method('VUSB.add', [arg('vusb', VusbT)], DeviceIdT),
  method('VUSB.plug', [deviceId], task, 'task'),
  method('VUSB.unplug', [deviceId], task, 'task'),
  ...deviceCommon('VUSB', VusbT, VusbStateT),

  method('UPDATES.get', [arg('last_id', option(int)), arg('timeout', option(int))], UpdatesResultT),
  method('UPDATES.last_id', [], int),
  method('UPDATES.inject_barrier', [arg('vm_id', string), arg('id', int)], unit),
  method('UPDATES.remove_barrier', [arg('id', int)], unit),
  method('UPDATES.refresh_vm', [vmId], unit),

  method('DEBUG.trigger', [arg('cmd', string), arg('args', list(string))], unit),
  method('DEBUG.shutdown', [unitArg], unit),
] as const;

/** The xenopsd dialect by method name. */
export const xenopsdMethods = tableOf(xenopsdMethodList);
export type XenopsdMethods = typeof xenopsdMethods;
export type XenopsdMethodName = keyof XenopsdMethods;
