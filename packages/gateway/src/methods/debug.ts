import type { XenopsdMethods } from '@xenops/core';
import type { CallContext, SomeHandlers } from './method.js';
import { sendToOwner } from './vm-calls.js';

/** The DEBUG.trigger commands about a VM (its id first): they go to the VM's owner. */
const VM_TRIGGERS: ReadonlySet<string> = new Set(['reboot', 'halt', 'crash', 'no-ack', 'check-vbd-plug-ordering']);

/**
 * DEBUG.trigger (API.md §8.3): the backend's guest hooks, checked and carried out by the engine:
 * those about a VM by its owner's agent (a free VM's: this host's, or any agent), the others
 * (set-cancel-trigger, unknown commands) by this host's. Reactions run as internal tasks; the call
 * returns at once.
 */
async function trigger(call: CallContext, cmd: string, args: readonly string[]): Promise<null> {
  const command = { type: 'DebugTrigger', cmd, args } as const;
  const vmId = VM_TRIGGERS.has(cmd) ? args[0] : undefined;
  if (vmId !== undefined) await sendToOwner(call, vmId, command, { orAnyAgent: true });
  // A cancel trigger is a fact of this host (the tasks its agent creates); any agent can say a command is unknown.
  else await call.gateway.engine.send(call.gateway.hostId, call.dbg, command, { orAnyAgent: cmd !== 'set-cancel-trigger' });
  return null;
}

export const debugHandlers = {
  'DEBUG.trigger': (call, a) => trigger(call, a.cmd, a.args),
} satisfies SomeHandlers<XenopsdMethods>;
