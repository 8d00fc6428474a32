/** `xenops remove`: delete a VM and its devices (API.md §5.2 VM.remove, §7.6 cascade). */
import type { Command } from '../command.js';
import { resolveVm, label } from '../resolve.js';
import { call, runOperation } from '../wait.js';

export const remove: Command = {
  name: 'remove',
  aliases: ['rm', 'undefine'],
  summary: 'remove a Halted or Suspended VM and all its devices',
  usage: 'remove VM [--force]',
  options: { force: { type: 'boolean', short: 'f', description: 'power the VM off first if it is running' } },
  examples: ['xenops remove web01', 'xenops remove web01 --force'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  async run(ctx, [q], values) {
    const vm = await resolveVm(ctx, q!);
    const errCtx = { op: 'remove', vm: label(vm) };
    if (values.force && (vm.power === 'Running' || vm.power === 'Paused')) {
      await runOperation(ctx, {
        forceWait: true,
        method: 'VM.shutdown',
        args: { id: vm.id },
        label: `power off ${label(vm)}`,
        errCtx: { ...errCtx, op: 'shutdown' },
      });
    }
    await call(ctx, 'VM.remove', { id: vm.id }, errCtx);
    if (ctx.json) ctx.printJson({ id: vm.id, name: vm.name, removed: true });
    else ctx.out(`Removed VM ${label(vm)} (${vm.id})`);
  },
};
