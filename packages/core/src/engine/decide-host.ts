import type { EventBody } from '../events/event.js';
import type { HostState } from '../model/host-state.js';

/** What a host's decider takes: settings and DEBUG cancel triggers (`host/<id>`, written by that host's agent only). */
export type HostInput =
  /** HOST.set_worker_pool_size. */
  | { readonly type: 'SetPoolSize'; readonly size: number }
  /** HOST.send_debug_keys, HOST.update_guest_agent_features, HOST.set_numa_affinity_policy. */
  | { readonly type: 'SetHostSetting'; readonly key: string; readonly value: unknown }
  /** DEBUG.trigger set-cancel-trigger (§8.3): the next task created with this dbg is cancelled at `point`. */
  | { readonly type: 'SetCancelTrigger'; readonly dbg: string; readonly point: number }
  /** A task was created with an armed trigger's dbg: the trigger is used up (one-shot). */
  | { readonly type: 'UseCancelTrigger'; readonly dbg: string; readonly taskId: string };

/** The host's decider: pure, `decideHost(state, input) -> events`. */
export function decideHost(host: HostState, input: HostInput, hostId: string): EventBody[] {
  switch (input.type) {
    case 'SetPoolSize':
      return [{ type: 'HostSettingChanged', hostId, key: 'pool_size', value: input.size }];
    case 'SetHostSetting':
      return [{ type: 'HostSettingChanged', hostId, key: input.key, value: input.value }];
    case 'SetCancelTrigger':
      return [{ type: 'CancelTriggerSet', dbg: input.dbg, point: input.point }];
    case 'UseCancelTrigger':
      return host.cancelTriggers.some(([dbg]) => dbg === input.dbg) ? [{ type: 'CancelTriggerUsed', dbg: input.dbg, taskId: input.taskId }] : [];
  }
}
