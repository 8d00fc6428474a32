/** Live changes of vCPUs and memory (API.md §5.2 VM.set_vcpus, VM.set_memory_dynamic_range). */
import { usageError } from '../errors.js';
import type { Command } from '../command.js';
import { resolveVm, label } from '../resolve.js';
import { runOperation } from '../wait.js';
import { parsePositiveInt, reportVmOperation } from './common.js';
import { formatBytes, parseSize } from '../format/units.js';

export const vcpus: Command = {
  name: 'vcpus',
  summary: 'set the number of online vCPUs of a running VM',
  usage: 'vcpus VM N [--no-wait]',
  description: 'N must be between 1 and the VM\'s maxvcpus (vcpu_max).',
  examples: ['xenops vcpus web01 2'],
  args: { min: 2, max: 2 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [q, n]) {
    const count = parsePositiveInt(n!, 'the vCPU count');
    const vm = await resolveVm(ctx, q!);
    const o = await runOperation(ctx, { method: 'VM.set_vcpus', args: { id: vm.id, vcpus: count }, label: `vcpus ${label(vm)}`, errCtx: { op: 'vcpus', vm: label(vm) } });
    if (o) await reportVmOperation(ctx, vm, `Set ${count} vCPUs on`, [o], { vcpus: count });
  },
};

export const memory: Command = {
  name: 'memory',
  summary: 'set the dynamic memory range (balloon target) of a running VM',
  usage: 'memory VM MIN MAX [--no-wait]',
  description: 'Sizes: a bare number is MiB (as in xl); or use a suffix: 512M, 2G, 1048576K.\nMIN must not exceed MAX, and MAX must not exceed the VM\'s static maximum (maxmem).',
  examples: ['xenops memory web01 512M 1G', 'xenops memory web01 1024 2048'],
  args: { min: 3, max: 3 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [q, lo, hi]) {
    const minimum = parseSize(lo!, 'MIN');
    const maximum = parseSize(hi!, 'MAX');
    if (minimum > maximum) throw usageError(`MIN (${formatBytes(minimum)}) must not exceed MAX (${formatBytes(maximum)})`);
    const vm = await resolveVm(ctx, q!);
    const staticMax = Number(vm.config.memory_static_max);
    if (Number.isFinite(staticMax) && maximum > staticMax) {
      throw usageError(`MAX (${formatBytes(maximum)}) exceeds the static maximum of VM ${label(vm)} (${formatBytes(staticMax)}); raise maxmem in its configuration`);
    }
    const o = await runOperation(ctx, {
      method: 'VM.set_memory_dynamic_range',
      args: { id: vm.id, minimum, maximum },
      label: `memory ${label(vm)}`,
      errCtx: { op: 'memory', vm: label(vm) },
    });
    if (o) await reportVmOperation(ctx, vm, `Set memory ${formatBytes(minimum)}–${formatBytes(maximum)} on`, [o], { minimum, maximum });
  },
};
