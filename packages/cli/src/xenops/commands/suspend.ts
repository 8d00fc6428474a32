/** Suspend to and resume from an image (API.md §5.2 VM.suspend / VM.resume, `disk` §4.1). */
import { usageError } from '../errors.js';
import type { Command } from '../command.js';
import { resolveVm, label } from '../resolve.js';
import { runOperation } from '../wait.js';
import { reportVmOperation, str } from './common.js';
import { diskOfTarget } from '../xl-devices.js';

function image(values: Record<string, unknown>): unknown {
  const path = str(values.image);
  if (!path) throw usageError('--image PATH is required: where the suspend image is written/read (a block device path, or vdi:SR/VDI)');
  return diskOfTarget(path);
}

export const suspend: Command = {
  name: 'suspend',
  summary: 'save a running VM to an image and stop it (Suspended)',
  usage: 'suspend VM --image PATH [--no-wait]',
  options: { image: { type: 'string', value: 'PATH', description: 'suspend image: a local path (["Local", PATH]) or vdi:SR/VDI' } },
  examples: ['xenops suspend web01 --image /dev/vg/web01-suspend'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [q], values) {
    const disk = image(values);
    const vm = await resolveVm(ctx, q!);
    const o = await runOperation(ctx, { method: 'VM.suspend', args: { id: vm.id, suspend_vdi: disk }, label: `suspend ${label(vm)}`, errCtx: { op: 'suspend', vm: label(vm) } });
    if (o) await reportVmOperation(ctx, vm, 'Suspended', [o]);
  },
};

export const resume: Command = {
  name: 'resume',
  summary: 'resume a Suspended VM from its image (and let it run, unless --paused)',
  usage: 'resume VM --image PATH [--paused] [--no-wait]',
  options: {
    image: { type: 'string', value: 'PATH', description: 'the suspend image given to suspend' },
    paused: { type: 'boolean', description: 'leave the VM Paused after restoring it' },
  },
  examples: ['xenops resume web01 --image /dev/vg/web01-suspend'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [q], values) {
    const disk = image(values);
    const vm = await resolveVm(ctx, q!);
    const errCtx = { op: 'resume', vm: label(vm) };
    const first = await runOperation(ctx, { method: 'VM.resume', args: { id: vm.id, suspend_vdi: disk }, label: `resume ${label(vm)}`, errCtx });
    if (!first) return;
    const outcomes = [first];
    if (values.paused !== true) {
      const o = await runOperation(ctx, { method: 'VM.unpause', args: { id: vm.id }, label: `unpause ${label(vm)}`, errCtx: { ...errCtx, op: 'unpause' } });
      if (o) outcomes.push({ ...o, elapsed: first.elapsed + o.elapsed });
    }
    await reportVmOperation(ctx, vm, 'Resumed', outcomes);
  },
};
