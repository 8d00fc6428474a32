/** `xenops migrate` and `xenops evacuate` (API.md §7.8 VM.migrate, §9.7 HOST.evacuate). */
import type { Command } from '../command.js';
import { usageError } from '../errors.js';
import { label, resolveVm } from '../resolve.js';
import { runOperation } from '../wait.js';
import { reportVmOperation, str } from './common.js';

/** `--to`: a host id (`xenops://ID`) or a URL as VM.migrate's `xenops_url` takes it. */
export function destinationUrl(to: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(to) ? to : `xenops://${to}`;
}

export const migrate: Command = {
  name: 'migrate',
  summary: 'live-migrate a running VM to another host (or to a new domain on its own)',
  usage: 'migrate VM --to HOST|URL [--no-wait]',
  description:
    'The VM keeps running (or Paused) while its state is copied; it then switches over to the new host.\n' +
    'HOST is a host id of xenops hosts; a URL is passed as is (xenops://ID, http://ADDR:PORT/, unix:/PATH).\n' +
    'Ctrl-C cancels the migration until its point of no return; the VM then stays where it was.',
  options: { to: { type: 'string', value: 'HOST', description: 'the destination host id, or a xenops URL' } },
  examples: ['xenops migrate web01 --to h2', 'xenops migrate web01 --to xenops://h3 --no-wait'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [q], values) {
    const to = str(values.to);
    if (!to) throw usageError('--to HOST is required: the host to move the VM to (see xenops hosts)');
    const vm = await resolveVm(ctx, q!);
    const url = destinationUrl(to);
    const o = await runOperation(ctx, {
      method: 'VM.migrate',
      args: { id: vm.id, vdi_map: {}, vif_map: {}, pci_map: {}, xenops_url: url, compress: false, verify_dest: false, localhost_migration: false },
      label: `migrate ${label(vm)} to ${to}`,
      errCtx: { op: 'migrate', vm: label(vm) },
    });
    if (o) await reportVmOperation(ctx, vm, 'Migrated', [o], { to: url });
  },
};

export const evacuate: Command = {
  name: 'evacuate',
  summary: 'live-migrate every VM of a host to the others (least-loaded first)',
  usage: 'evacuate HOST [--no-wait]',
  description: 'One migration task per VM (see xenops tasks); the evacuation fails naming the VMs it could not move.',
  examples: ['xenops evacuate h1'],
  args: { min: 1, max: 1 },
  tasks: true,
  async run(ctx, [host]) {
    const o = await runOperation(ctx, { method: 'HOST.evacuate', args: { host }, label: `evacuate ${host}`, errCtx: { op: `evacuate ${host}` } });
    if (!o) return;
    const moved = (Array.isArray(o.result) ? o.result : []) as Array<[string, string]>;
    if (ctx.json) {
      ctx.printJson({ host, migrations: moved.map(([vm, task]) => ({ vm, task })), elapsed: o.elapsed });
      return;
    }
    ctx.out(`Evacuated ${host}: ${moved.length} VM(s) migrated`);
    for (const [vm, task] of moved) ctx.out(`  ${vm} (task ${task})`);
  },
};
