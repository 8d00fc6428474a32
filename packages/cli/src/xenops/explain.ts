/**
 * Turns a server error value (API.md §6) into one clear line and an exit code, knowing what the
 * user was doing: `VM web01 is Running; shut it down first, or use --force`.
 */
import { CliError, ExitCode } from './errors.js';

/** What the command was doing when the error came back. */
export interface ErrorContext {
  /** The operation, e.g. `start`, `remove`, `disk unplug`. */
  op: string;
  /** How the user named the VM (its name when known). */
  vm?: string;
  /** The device name for device operations. */
  device?: string;
  /** `disk` or `nic` for device operations. */
  deviceKind?: 'disk' | 'nic' | 'pci';
  /** The error came from a task (it failed while running, not when the call was made). */
  fromTask?: boolean;
}

const INPUT_ERROR_PREFIXES = [
  'Expecting named argument',
  'No value found for key',
  'Type error at',
  'Integer out of range',
  'invalid id',
  'malformed params',
  'invalid JSON-RPC request',
  'request body exceeds',
  'as_of ',
];

function tagOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return 'Unknown_error';
}

function powerHint(op: string, vm: string, actual: string, expected: string): string {
  if (op === 'remove') return 'shut it down first, or use --force';
  if (op === 'start' || op === 'create') {
    if (actual === 'Suspended') return `resume it with 'xenops resume ${vm} --image PATH', or shut it down to discard the suspend image`;
    if (actual === 'Paused') return `it is already started; 'xenops unpause ${vm}' lets it run`;
    return `it is already started; use 'xenops reboot ${vm}' to restart it`;
  }
  if (op === 'resume') return actual === 'Halted' ? `only a Suspended VM can be resumed; use 'xenops start ${vm}'` : 'only a Suspended VM can be resumed';
  if (expected === 'Running' || expected === 'Paused') {
    if (actual === 'Suspended') return `resume it first with 'xenops resume ${vm} --image PATH'`;
    if (actual === 'Halted') {
      if (op.startsWith('disk ')) return `start it first with 'xenops start ${vm}' (media can only be changed in a running VM)`;
      return `start it first with 'xenops start ${vm}'`;
    }
  }
  return `it must be ${expected}`;
}

function deviceLabel(ctx: ErrorContext): string {
  const kind = ctx.deviceKind ?? 'device';
  return ctx.device ? `${kind} ${ctx.device} of VM ${ctx.vm ?? '?'}` : kind;
}

/** `Does_not_exist` keys (§6.2) as words. */
function doesNotExist(payload: unknown, ctx: ErrorContext): string {
  const [kind, key] = Array.isArray(payload) ? (payload as [string, string]) : ['object', String(payload)];
  const k = String(key);
  if (kind === 'task') return `task ${k} does not exist; 'xenops tasks' lists the tasks`;
  if (kind === 'domain') return `VM ${ctx.vm ?? k} is not running (it has no domain); start it first with 'xenops start ${ctx.vm ?? k}'`;
  const dev = /^(.*)\/(vbd|vif|pci|vgpu|vusb)\.(.*)$/.exec(k);
  if (dev) {
    const word = { vbd: 'disk', vif: 'nic', pci: 'PCI device', vgpu: 'vGPU', vusb: 'USB device' }[dev[2] as 'vbd'];
    const list = dev[2] === 'vbd' ? 'disk' : dev[2] === 'vif' ? 'nic' : undefined;
    return `${word} ${dev[3]} of VM ${ctx.vm ?? dev[1]} does not exist` + (list ? `; 'xenops ${list} list ${ctx.vm ?? dev[1]}' lists them` : '');
  }
  if (kind === 'VM') return `VM ${ctx.vm ?? k.replace(/\/config$/, '')} does not exist; 'xenops list' shows the VMs`;
  return `${kind} ${k} does not exist`;
}

export function explain(error: unknown, ctx: ErrorContext): CliError {
  const tag = tagOf(error);
  const payload = Array.isArray(error) ? error[1] : undefined;
  const vm = ctx.vm ?? '?';
  const failed = ctx.fromTask ? ExitCode.TASK_FAILED : ExitCode.GENERIC;
  const mk = (msg: string, code: number) => new CliError(msg, code, error);
  switch (tag) {
    case 'Bad_power_state': {
      const [actual, expected] = Array.isArray(payload) ? payload.map(String) : ['?', '?'];
      return mk(`VM ${vm} is ${actual}; ${powerHint(ctx.op, vm, actual!, expected!)}`, ExitCode.STATE);
    }
    case 'Does_not_exist':
      return mk(doesNotExist(payload, ctx), ExitCode.NOT_FOUND);
    case 'Unimplemented':
      return mk(`this server does not implement ${String(payload ?? ctx.op)} yet; upgrade xenopsd, or use a server that offers it`, ExitCode.UNIMPLEMENTED);
    case 'Device_is_connected':
      if (ctx.op.endsWith(' plug')) return mk(`${deviceLabel(ctx)} is already plugged`, ExitCode.STATE);
      if (ctx.op === 'import') return mk('the import would delete a device that is plugged; unplug it (or shut the VM down) first', ExitCode.STATE);
      return mk(`${deviceLabel(ctx)} is plugged; unplug it first with 'xenops ${ctx.deviceKind ?? 'disk'} unplug ${vm} ${ctx.device ?? 'DEVICE'}'`, ExitCode.STATE);
    case 'Device_not_connected':
      return mk(`${deviceLabel(ctx)} is not plugged`, ExitCode.STATE);
    case 'Media_not_ejectable':
      return mk(`${deviceLabel(ctx)} is a fixed disk; only CD-ROM and floppy media can be ejected or inserted`, ExitCode.STATE);
    case 'Already_exists': {
      const [kind, key] = Array.isArray(payload) ? payload.map(String) : [String(payload ?? '?'), ''];
      if (kind === 'domain') return mk(`VM ${vm} already has a domain; shut it down first`, ExitCode.STATE);
      if (kind === 'vbd') return mk(`disk position ${key} of VM ${vm} is taken by another plugged disk; use another device name`, ExitCode.STATE);
      if (kind === 'vif' || kind === 'pci') return mk(`${kind === 'vif' ? 'nic' : 'PCI'} position ${key} of VM ${vm} is taken by another plugged device`, ExitCode.STATE);
      return mk(`${kind} ${key} already exists`, ExitCode.STATE);
    }
    case 'Domain_not_built':
      return mk(`the domain of VM ${vm} is not built yet; wait for its start to finish`, ExitCode.STATE);
    case 'Invalid_vcpus':
      return mk(`VM ${vm} can have between 1 and ${String(payload)} vCPUs; raise its maxvcpus (vcpu_max) to go higher`, ExitCode.USAGE);
    case 'Failed_to_acknowledge_shutdown_request':
      return mk(`the guest of VM ${vm} did not acknowledge the ${ctx.op === 'reboot' ? 'reboot' : 'shutdown'} request; use --force to power it off`, ExitCode.TASK_FAILED);
    case 'Failed_to_shutdown': {
      const t = Array.isArray(payload) ? payload[1] : undefined;
      return mk(`the guest of VM ${vm} did not shut down within ${String(t ?? '?')} s; retry with a longer --timeout, or use --force`, ExitCode.TASK_FAILED);
    }
    case 'Failed_to_acknowledge_suspend_request':
      return mk(`the guest of VM ${vm} did not acknowledge the suspend request; shut it down instead, or retry`, ExitCode.TASK_FAILED);
    case 'Failed_to_suspend':
      return mk(`the guest of VM ${vm} did not finish suspending in time`, ExitCode.TASK_FAILED);
    case 'Cancelled':
      return mk(`task ${String(payload)} was cancelled; the VM was put back as it was`, ExitCode.TASK_FAILED);
    case 'Failed_to_contact_remote_service':
      if (ctx.op === 'migrate') return mk(`cannot migrate VM ${vm}: ${String(payload)} names no reachable host of this cluster (see xenops hosts); the VM stays where it was`, ExitCode.TASK_FAILED);
      return mk(`cannot contact the remote service ${String(payload)}`, ExitCode.CONNECTION);
    case 'Internal_error': {
      const msg = String(payload ?? '');
      if (INPUT_ERROR_PREFIXES.some((p) => msg.startsWith(p))) return mk(`the server rejected the request: ${msg}`, ExitCode.USAGE);
      if (msg.startsWith('Interrupted by service restart')) return mk(`the operation was interrupted by a service restart; run it again`, ExitCode.TASK_FAILED);
      if (msg.startsWith('Interrupted: the event log could not be written')) {
        return mk(`the operation was interrupted because the store was unreachable; run it again`, ExitCode.TASK_FAILED);
      }
      return mk(`internal error on the server: ${msg}`, failed);
    }
    default:
      return mk(`${tag}${payload === undefined ? '' : ` ${JSON.stringify(payload)}`}`, failed);
  }
}
