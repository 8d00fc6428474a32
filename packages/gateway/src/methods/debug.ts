import { Errors, list, string, unit, type GuestAction, type GuestMode } from '@xenops/core';
import { method, type CallContext, type MethodSpec } from './method.js';
import { hostOf, registeredVm } from './vm-calls.js';

// A Map, not an object: a command such as `__proto__` or `constructor` must not find anything.
const GUEST_ACTIONS = new Map<string, GuestAction>([
  ['reboot', 'reboot'],
  ['halt', 'halt'],
  ['crash', 'crash'],
]);
const GUEST_MODES = new Set<GuestMode>(['ignore', 'hang', 'normal']);

function arity(cmd: string, args: readonly string[], allowed: readonly number[]): void {
  if (!allowed.includes(args.length)) {
    throw Errors.internal(`DEBUG.trigger ${cmd} expects ${allowed.join(' or ')} argument(s), got ${args.length}`);
  }
}

/** DEBUG.trigger (API.md §8.3): simulator hooks. Reactions run as internal tasks; the call returns at once. */
async function trigger(call: CallContext, cmd: string, args: readonly string[]): Promise<null> {
  const { engine } = call.gateway;
  const guestAction = GUEST_ACTIONS.get(cmd);
  if (guestAction) {
    arity(cmd, args, [1]);
    const vmId = args[0]!;
    // The VM must be registered here; its agent checks the domain.
    const vm = registeredVm(call, vmId);
    await engine.send(hostOf(call, vm), call.dbg, { type: 'RequestGuestAction', vmId, action: guestAction });
    return null;
  }
  switch (cmd) {
    case 'no-ack': {
      arity(cmd, args, [1, 2]);
      const vmId = args[0]!;
      const mode = (args[1] ?? 'ignore') as GuestMode;
      if (!GUEST_MODES.has(mode)) throw Errors.internal(`DEBUG.trigger no-ack: mode must be ignore, hang or normal, not ${JSON.stringify(args[1])}`);
      const vm = registeredVm(call, vmId);
      await engine.send(hostOf(call, vm), call.dbg, { type: 'SetGuestMode', vmId, mode });
      return null;
    }
    case 'set-cancel-trigger': {
      arity(cmd, args, [2]);
      const point = Number(args[1]);
      if (!/^\d+$/.test(args[1]!) || !Number.isSafeInteger(point) || point < 1) {
        throw Errors.internal(`DEBUG.trigger set-cancel-trigger: n must be a whole number of at least 1, not ${JSON.stringify(args[1])}`);
      }
      await engine.send(call.gateway.hostId, call.dbg, { type: 'SetCancelTrigger', dbg: args[0]!, point });
      return null;
    }
    case 'check-vbd-plug-ordering': {
      arity(cmd, args, [1]);
      const vm = registeredVm(call, args[0]!);
      if (!vm.domain) throw Errors.domainDoesNotExist(vm.id);
      // Since the domain was created, every ReadWrite VBD must have been plugged before every ReadOnly one.
      let firstReadOnly: string | undefined;
      for (const dev of vm.domain.vbdPlugOrder) {
        const mode = vm.devices.vbd.get(dev)?.config.mode;
        if (mode === 'ReadOnly') firstReadOnly ??= dev;
        else if (mode === 'ReadWrite' && firstReadOnly !== undefined) {
          throw Errors.internal(`VBD plug ordering violated: ${firstReadOnly} before ${dev}`);
        }
      }
      return null;
    }
    default:
      throw Errors.unimplemented(cmd);
  }
}

export const debugMethods: readonly MethodSpec[] = [
  method(
    'DEBUG.trigger',
    [
      { key: 'cmd', type: string },
      { key: 'args', type: list(string) },
    ],
    unit,
    (call, a) => trigger(call, a.cmd as string, a.args as string[]),
  ),
];
