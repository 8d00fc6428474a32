/** Power operations: start, shutdown, reboot, pause, unpause (API.md §5.2, §7.3, §7.4). */
import type { Command } from '../command.js';
import { usageError } from '../errors.js';
import type { Context } from '../context.js';
import { resolveVm, label, type VmEntry } from '../resolve.js';
import { runOperation, type TaskOutcome } from '../wait.js';
import { parseNonNegative, reportVmOperation, str } from './common.js';

/** Starts a Halted VM and (unless `paused`) unpauses it, as `xl create` does. */
export async function startVm(ctx: Context, vm: VmEntry, paused: boolean, op = 'start', host?: string): Promise<TaskOutcome[] | undefined> {
  const errCtx = { op, vm: label(vm) };
  const args = { id: vm.id, paused: false, ...(host !== undefined ? { host } : {}) };
  const first = await runOperation(ctx, { method: 'VM.start', args, label: `start ${label(vm)}`, errCtx });
  if (!first) return undefined;
  if (paused) return [first];
  const started = Date.now() - first.elapsed * 1000;
  const second = await runOperation(ctx, { method: 'VM.unpause', args: { id: vm.id }, label: `unpause ${label(vm)}`, errCtx: { ...errCtx, op: 'unpause' } });
  return second ? [first, { ...second, elapsed: (Date.now() - started) / 1000 }] : [first];
}

export const start: Command = {
  name: 'start',
  summary: 'start a Halted VM (and let it run, unless --paused)',
  usage: 'start VM [--paused] [--host ID] [--no-wait]',
  description:
    'xenopsd leaves a started VM Paused; like xl, xenops then unpauses it unless --paused is given.\n' +
    'With --no-wait the VM.start task id is printed at once and the VM is left Paused.\n' +
    'Without --host the server places the VM (its --placement policy; see xenops hosts).',
  options: {
    paused: { type: 'boolean', description: 'leave the VM Paused after building it' },
    host: { type: 'string', value: 'ID', description: 'the host to start it on (an Up host of xenops hosts)' },
  },
  examples: ['xenops start web01', 'xenops start 5f0c --paused', 'xenops start web01 --host h2'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [name], values) {
    const vm = await resolveVm(ctx, name!);
    const host = str(values.host);
    const outcomes = await startVm(ctx, vm, values.paused === true, 'start', host);
    if (outcomes) await reportVmOperation(ctx, vm, 'Started', outcomes);
  },
};

export const shutdown: Command = {
  name: 'shutdown',
  summary: 'shut a VM down: ask the guest (clean), or power it off with --force',
  usage: 'shutdown VM [--timeout S | --force] [--no-wait]',
  description:
    'Without --force the guest is asked to power off and given --timeout seconds (default 60);\n' +
    'if it does not comply the command fails and the VM keeps running. --force powers it off at once.',
  options: {
    timeout: { type: 'string', value: 'S', description: 'seconds the guest gets to shut down cleanly (default 60)' },
    force: { type: 'boolean', short: 'f', description: 'power off at once (hard shutdown, no guest involvement)' },
  },
  examples: ['xenops shutdown web01', 'xenops shutdown web01 --timeout 120', 'xenops shutdown web01 --force'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [name], values) {
    const timeout = parseNonNegative(str(values.timeout), '--timeout');
    if (values.force && timeout !== undefined) throw usageError('--force and --timeout are alternatives; give one');
    const vm = await resolveVm(ctx, name!);
    const args: Record<string, unknown> = { id: vm.id };
    if (!values.force) args.delay = timeout ?? 60;
    const o = await runOperation(ctx, { method: 'VM.shutdown', args, label: `shutdown ${label(vm)}`, errCtx: { op: 'shutdown', vm: label(vm) } });
    if (o) await reportVmOperation(ctx, vm, values.force ? 'Powered off' : 'Shut down', [o]);
  },
};

export const reboot: Command = {
  name: 'reboot',
  summary: 'reboot a running VM (clean, or hard with --force)',
  usage: 'reboot VM [--timeout S | --force] [--no-wait]',
  options: {
    timeout: { type: 'string', value: 'S', description: 'seconds the guest gets to shut down cleanly (default 60)' },
    force: { type: 'boolean', short: 'f', description: 'reset at once, without asking the guest' },
  },
  examples: ['xenops reboot web01', 'xenops reboot web01 --force'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  tasks: true,
  async run(ctx, [name], values) {
    const timeout = parseNonNegative(str(values.timeout), '--timeout');
    const vm = await resolveVm(ctx, name!);
    const args: Record<string, unknown> = { id: vm.id };
    if (!values.force) args.delay = timeout ?? 60;
    const o = await runOperation(ctx, { method: 'VM.reboot', args, label: `reboot ${label(vm)}`, errCtx: { op: 'reboot', vm: label(vm) } });
    if (o) await reportVmOperation(ctx, vm, 'Rebooted', [o]);
  },
};

function simple(name: 'pause' | 'unpause', summary: string, done: string): Command {
  return {
    name,
    summary,
    usage: `${name} VM [--no-wait]`,
    examples: [`xenops ${name} web01`],
    args: { min: 1, max: 1 },
    complete: ['vm'],
    tasks: true,
    async run(ctx, [q]) {
      const vm = await resolveVm(ctx, q!);
      const o = await runOperation(ctx, { method: `VM.${name}`, args: { id: vm.id }, label: `${name} ${label(vm)}`, errCtx: { op: name, vm: label(vm) } });
      if (o) await reportVmOperation(ctx, vm, done, [o]);
    },
  };
}

export const pause = simple('pause', 'pause a running VM (its vCPUs stop; memory is kept)', 'Paused');
export const unpause = simple('unpause', 'let a Paused VM run again', 'Unpaused');
