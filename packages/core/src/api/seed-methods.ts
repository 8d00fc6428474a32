/** The seed dialect's 25 methods (API.md §5.4), declared once: see method-declaration.ts. */
import { bool, float, int, list, option, string, unit } from '../idl/descriptor.js';
import { QueryT } from '../idl/host.js';
import { DiskT, VmIdT } from '../idl/shared.js';
import { TaskT } from '../idl/task.js';
import { VmT } from '../idl/vm.js';
import { arg, declareIn, tableOf } from './method-declaration.js';
import { VmPairT } from './xenopsd-methods.js';

const method = declareIn('seed');

const vmId = arg('id', VmIdT);
const asOf = arg('as_of', option(int), { namedOnly: true });
const task = string;

export const seedMethodList = [
  method('Query.query', [], QueryT),
  method('Vm.add', [arg('t', VmT)], VmIdT),
  method('Vm.remove', [vmId], unit, 'queued'),
  method('Vm.create', [vmId], task, 'task'),
  method('Vm.build', [vmId], task, 'task'),
  method('Vm.create_device_model', [vmId, arg('is_resuming', bool)], task, 'task'),
  method('Vm.destroy', [vmId], task, 'task'),
  method('Vm.pause', [vmId], task, 'task'),
  method('Vm.unpause', [vmId], task, 'task'),
  method('Vm.set_vcpus', [vmId, arg('num_vpcus', int)], task, 'task'),
  method('Vm.set_shadow_multiplier', [vmId, arg('shadow_multiplier', float)], task, 'task'),
  method('Vm.stat', [vmId, asOf], option(VmPairT)),
  method('Vm.list', [asOf], list(VmPairT)),
  method('Vm.start', [vmId], task, 'task'),
  method('Vm.shutdown', [vmId, arg('clean_shutdown_timeout', option(float))], task, 'task'),
  method('Vm.reboot', [vmId, arg('clean_shutdown_timeout', option(float))], task, 'task'),
  method('Vm.suspend', [vmId, arg('disk', DiskT)], task, 'task'),
  method('Vm.resume', [vmId, arg('disk', DiskT)], task, 'task'),
  method('Vm.s3suspend', [vmId], task, 'task'),
  method('Vm.s3resume', [vmId], task, 'task'),
  method('Vm.migrate', [vmId, arg('url', string)], task, 'task'),
  method('Vm.export_metadata', [vmId], string),
  method('Vm.import_metadata', [arg('config', string)], VmIdT),
  method('Task.stat', [arg('id', string), asOf], TaskT),
  method('Task.cancel', [arg('id', string)], unit),
] as const;

/** The seed dialect by method name. */
export const seedMethods = tableOf(seedMethodList);
export type SeedMethods = typeof seedMethods;
export type SeedMethodName = keyof SeedMethods;
