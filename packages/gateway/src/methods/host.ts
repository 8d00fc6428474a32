import {
  bool,
  Errors,
  GuestAgentFeatureT,
  HostT,
  int,
  list,
  NumaAffinityPolicyT,
  option,
  string,
  unit,
  type HostFacts,
} from '@xenops/core';
import type { ArgSpec } from '../dispatch/args.js';
import { combinePolicies, formatFeatureset, isCompatible, parseFeatureset } from './featureset.js';
import { updatesOf } from '../updates/updates-service.js';
import { method, type CallContext, type MethodSpec } from './method.js';

const unitArg: ArgSpec = { key: 'unit', type: unit };

/** Stores a host setting: a fact of `host/<id>`, which only that host's agent writes. */
async function recordSetting(call: CallContext, key: string, value: unknown): Promise<null> {
  await call.gateway.engine.send(call.gateway.hostId, call.dbg, { type: 'SetHostSetting', key, value });
  return null;
}

/** The facts of this host as its agent's backend reports them (API.md §8.1, §8.4). */
async function hostFacts(call: CallContext): Promise<HostFacts> {
  return (await call.gateway.engine.send(call.gateway.hostId, call.dbg, { type: 'HostFacts' })) as HostFacts;
}

/** HOST.* (API.md §5.1) and get_diagnostics (§7.11). */
export const hostMethods: readonly MethodSpec[] = [
  method('HOST.stat', [], HostT, async (call) => (await hostFacts(call)).host),
  method('HOST.get_console_data', [], string, async (call) => (await hostFacts(call)).consoleData),
  method('HOST.get_total_memory_mib', [], int, async (call) => (await hostFacts(call)).totalMemoryMib),
  method('HOST.send_debug_keys', [{ key: 'debug_keys', type: string }], unit, (call, a) => recordSetting(call, 'debug_keys', a.debug_keys)),
  method('HOST.set_worker_pool_size', [{ key: 'pool_size', type: int }], unit, async (call, a) => {
    const size = a.pool_size as number;
    if (size < 1) throw Errors.internal(`pool_size must be at least 1, got ${size}`);
    await call.gateway.engine.send(call.gateway.hostId, call.dbg, { type: 'SetPoolSize', size });
    return null;
  }),
  method('HOST.update_guest_agent_features', [{ key: 'features', type: list(GuestAgentFeatureT) }], unit, (call, a) =>
    recordSetting(call, 'guest_agent_features', GuestAgentFeatureTList.encode(a.features as never, 'xenopsd')),
  ),
  method(
    'HOST.combine_cpu_policies',
    [
      { key: 'policy1', type: string },
      { key: 'policy2', type: string },
    ],
    string,
    async (_call, a) => formatFeatureset(combinePolicies(parseFeatureset(a.policy1 as string, 'policy1'), parseFeatureset(a.policy2 as string, 'policy2'))),
  ),
  method(
    'HOST.is_compatible',
    [
      { key: 'vm_policy', type: string },
      { key: 'host_policy', type: string },
    ],
    bool,
    async (_call, a) => isCompatible(parseFeatureset(a.vm_policy as string, 'vm_policy'), parseFeatureset(a.host_policy as string, 'host_policy')),
  ),
  method('HOST.set_numa_affinity_policy', [{ key: 'numa_affinity_policy', type: option(NumaAffinityPolicyT) }], unit, (call, a) =>
    recordSetting(call, 'numa_affinity_policy', a.numa_affinity_policy ?? 'Any'),
  ),
  method('get_diagnostics', [unitArg], string, async ({ gateway }) => {
    let agent: Record<string, unknown> = {};
    try {
      agent = (await gateway.engine.send(gateway.hostId, 'internal:diagnostics', { type: 'Diagnose' })) as Record<string, unknown>;
    } catch (e) {
      agent = { workers: { size: 0, busy: 0 }, queues: {}, agent_error: (e as Error).message };
    }
    const tasks = [...gateway.projection.tasks.keys()].sort((x, y) => Number(x) - Number(y));
    return JSON.stringify({
      instance_id: gateway.instanceId,
      host: gateway.hostId,
      mode: gateway.mode,
      seq: gateway.projection.seq,
      ...agent,
      tasks,
      barriers: updatesOf(gateway.projection).set.barrierIds(),
    });
  }),
];

const GuestAgentFeatureTList = list(GuestAgentFeatureT);
