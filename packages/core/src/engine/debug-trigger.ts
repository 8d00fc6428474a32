import { Errors, type XenopsError } from '../errors.js';
import type { GuestMode } from '../events/event.js';
import { quarantineError } from '../model/log-damage.js';
import type { VmAggregate } from '../model/vm-aggregate.js';

/** What a DEBUG.trigger (API.md §8.3) acts on, once its arguments are checked. */
export type DebugTriggerTarget =
  /** A hook of the VM's simulated guest; `needsDomain`: DNE(dom) without one. */
  | { readonly kind: 'vm'; readonly vmId: string; readonly needsDomain: boolean }
  /** set-cancel-trigger: a fact of the host. */
  | { readonly kind: 'cancel-trigger'; readonly dbg: string; readonly point: number };

const VM_TRIGGERS: ReadonlyMap<string, { readonly arity: readonly number[]; readonly needsDomain: boolean }> = new Map([
  ['reboot', { arity: [1], needsDomain: true }],
  ['halt', { arity: [1], needsDomain: true }],
  ['crash', { arity: [1], needsDomain: true }],
  ['check-vbd-plug-ordering', { arity: [1], needsDomain: true }],
  ['no-ack', { arity: [1, 2], needsDomain: false }],
]);
const GUEST_MODES: ReadonlySet<string> = new Set<GuestMode>(['ignore', 'hang', 'normal']);

function arity(cmd: string, args: readonly string[], allowed: readonly number[]): XenopsError | undefined {
  return allowed.includes(args.length) ? undefined : Errors.internal(`DEBUG.trigger ${cmd} expects ${allowed.join(' or ')} argument(s), got ${args.length}`);
}

/** Checks a trigger's command and arguments (§8.3): a wrong count or value is IE, an unknown command Unimplemented. */
export function debugTriggerTarget(cmd: string, args: readonly string[]): DebugTriggerTarget | XenopsError {
  // A Map lookup: a command such as `__proto__` or `constructor` finds nothing.
  const vmTrigger = VM_TRIGGERS.get(cmd);
  if (vmTrigger) {
    const wrong = arity(cmd, args, vmTrigger.arity);
    if (wrong) return wrong;
    if (cmd === 'no-ack' && args[1] !== undefined && !GUEST_MODES.has(args[1])) {
      return Errors.internal(`DEBUG.trigger no-ack: mode must be ignore, hang or normal, not ${JSON.stringify(args[1])}`);
    }
    return { kind: 'vm', vmId: args[0]!, needsDomain: vmTrigger.needsDomain };
  }
  if (cmd === 'set-cancel-trigger') {
    const wrong = arity(cmd, args, [2]);
    if (wrong) return wrong;
    const point = Number(args[1]);
    if (!/^\d+$/.test(args[1]!) || !Number.isSafeInteger(point) || point < 1) {
      return Errors.internal(`DEBUG.trigger set-cancel-trigger: n must be a whole number of at least 1, not ${JSON.stringify(args[1])}`);
    }
    return { kind: 'cancel-trigger', dbg: args[0]!, point };
  }
  return Errors.unimplemented(cmd);
}

/** The VM a trigger acts on must be usable, registered and, for the guest's own actions, have a domain (§8.3). */
export function checkDebugTriggerVm(vm: VmAggregate, needsDomain: boolean): XenopsError | undefined {
  if (vm.quarantine) return quarantineError(vm.id, vm.quarantine);
  if (!vm.config) return Errors.vmDoesNotExist(vm.id);
  if (needsDomain && !vm.domain) return Errors.domainDoesNotExist(vm.id);
  return undefined;
}
