import { Errors, type XenopsError } from '../errors.js';
import type { GuestAction } from '../events/event.js';
import type { Action } from '../idl/index.js';
import type { Operation } from '../model/operation.js';
import type { VmAggregate } from '../model/vm-aggregate.js';
import type { DecideContext, DecidedEvent, Decision } from './decide.js';
import type { ObservedDomain } from './effect.js';

/** The crash-loop window of §7.5 when the engine setting is not given. */
export const DEFAULT_CRASH_LOOP_WINDOW_S = 120;

const reply = () => null;

/**
 * The guest did something by itself (a domain event the backend reported, §7.5): an internal
 * task on the VM's queue carries out the VM's action list. A check already waiting on the queue
 * for the same event absorbs a new one (§7.2).
 */
export function decideGuestEvent(vm: VmAggregate, action: GuestAction, ctx: DecideContext): Decision | XenopsError {
  if (!vm.config) return Errors.vmDoesNotExist(vm.id);
  if (!vm.domain) return Errors.domainDoesNotExist(vm.id);
  const actions = effectiveActions(vm, action, ctx);
  const operation: Operation = { kind: 'VM.guest_action', action, actions, autoDestroy: true };
  const waiting = vm.queue.find((t) => t.operation.kind === 'VM.guest_action' && t.operation.action === action);
  const events: DecidedEvent[] = [{ type: 'GuestActionRequested', vmId: vm.id, action }];
  if (!waiting) {
    events.push({
      internal: 'check_state',
      body: { type: 'TaskCreated', vmId: vm.id, operation, host: ctx.hostId, ctimeMs: ctx.nowMs },
    });
  }
  return { events, reply };
}

/**
 * The action list a guest event selects (§7.5), with the crash-loop guard: a crash within the
 * window after the last start turns every `Start` into `Shutdown`. A list without any of
 * Shutdown, Start, Pause, Softreboot is treated as `[Shutdown]`, so no domain is left half dead.
 */
export function effectiveActions(vm: VmAggregate, action: GuestAction, ctx: DecideContext): Action[] {
  const config = vm.config!;
  let list: readonly Action[];
  switch (action) {
    case 'halt':
      list = config.on_shutdown;
      break;
    case 'reboot':
      list = config.on_reboot;
      break;
    case 'crash': {
      const window = ctx.crashLoopWindowS ?? DEFAULT_CRASH_LOOP_WINDOW_S;
      const ranFor = ctx.nowMs / 1000 - (vm.domain?.startTime ?? 0);
      list = ranFor < window ? config.on_crash.map((a) => (a === 'Start' ? 'Shutdown' : a)) : config.on_crash;
      break;
    }
    case 'suspend':
      list = ['Shutdown'];
      break;
    case 'soft_reset':
      list = config.on_softreboot;
      break;
  }
  return list.some((a) => a !== 'Coredump') ? [...list] : [...list, 'Shutdown'];
}

/**
 * The agent's comparison, at start, of the log's domain of the VM with what the backend has
 * (ARCHITECTURE.md: "the agent reconciles with the backend ... by appending the events that make
 * the log true again"). A domain that vanished while nobody watched is recorded destroyed and the
 * VM goes through the state check with that cause (§8.4); a pause or unpause nobody recorded is
 * recorded. Domains of other hosts are not this host's to judge.
 */
export function decideReconcile(vm: VmAggregate, observed: ObservedDomain | undefined, ctx: DecideContext): Decision {
  const domain = vm.domain;
  if (!domain || domain.host !== ctx.hostId) return { events: [], reply };
  if (!observed || observed.domid !== domain.domid) {
    const events: DecidedEvent[] = [
      { internal: 'reconcile', body: { type: 'DomainDestroyed', vmId: vm.id } },
      {
        internal: 'check_state',
        body: {
          type: 'TaskCreated',
          vmId: vm.id,
          operation: { kind: 'VM.check_state', reason: `domain ${domain.domid} vanished while the agent was away`, autoDestroy: true },
          host: ctx.hostId,
          ctimeMs: ctx.nowMs,
        },
      },
    ];
    return { events, reply };
  }
  if (observed.paused !== domain.paused) {
    return { events: [{ internal: 'reconcile', body: { type: observed.paused ? 'DomainPaused' : 'DomainUnpaused', vmId: vm.id } }], reply };
  }
  return { events: [], reply };
}
