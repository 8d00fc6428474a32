import { Errors, GuestAgentFeatureT, list, type HostFacts, type XenopsdMethods } from '@xenops/core';
import { combinePolicies, formatFeatureset, isCompatible, parseFeatureset } from './featureset.js';
import { updatesOf } from '../updates/updates-service.js';
import type { CallContext, SomeHandlers } from './method.js';
import { hostRecords } from '../hosts/host-records.js';
/** Stores a host setting: a fact of `host/<id>`, which only that host's agent writes. */
async function recordSetting(call: CallContext, key: string, value: unknown): Promise<null> {
  await call.gateway.engine.send(call.gateway.hostId, call.dbg, { type: 'SetHostSetting', key, value });
  return null;
}

/** The facts of this host as its agent's backend reports them (API.md §8.1, §8.4). */
async function hostFacts(call: CallContext): Promise<HostFacts> {
  return (await call.gateway.engine.send(call.gateway.hostId, call.dbg, { type: 'HostFacts' })) as HostFacts;
}

/**
 * HOST.* (API.md §5.1) and get_diagnostics (§7.11). §5.1 gives the HOST calls no host argument:
 * they are about the gateway's own host (`--host-id`); HOST.list (§9.7) shows every host.
 */
export const hostHandlers = {
  'HOST.list': async ({ gateway }) => hostRecords(gateway),
  'HOST.stat': async (call) => (await hostFacts(call)).host,
  'HOST.get_console_data': async (call) => (await hostFacts(call)).consoleData,
  'HOST.get_total_memory_mib': async (call) => (await hostFacts(call)).totalMemoryMib,
  'HOST.send_debug_keys': (call, a) => recordSetting(call, 'debug_keys', a.debug_keys),
  'HOST.set_worker_pool_size': async (call, a) => {
    const size = a.pool_size;
    if (size < 1) throw Errors.internal(`pool_size must be at least 1, got ${size}`);
    await call.gateway.engine.send(call.gateway.hostId, call.dbg, { type: 'SetPoolSize', size });
    return null;
  },
  'HOST.update_guest_agent_features': (call, a) => recordSetting(call, 'guest_agent_features', GuestAgentFeatureTList.encode(a.features, 'xenopsd')),
  'HOST.combine_cpu_policies': async (_call, a) =>
    formatFeatureset(combinePolicies(parseFeatureset(a.policy1, 'policy1'), parseFeatureset(a.policy2, 'policy2'))),
  'HOST.is_compatible': async (_call, a) => isCompatible(parseFeatureset(a.vm_policy, 'vm_policy'), parseFeatureset(a.host_policy, 'host_policy')),
  'HOST.set_numa_affinity_policy': (call, a) => recordSetting(call, 'numa_affinity_policy', a.numa_affinity_policy ?? 'Any'),
  get_diagnostics: async ({ gateway }) => {
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
      leases: gateway.leasesHeld(),
      ...(gateway.hostScope !== undefined ? { host_scope: gateway.hostScope } : {}),
      placement: gateway.placement,
      barriers: updatesOf(gateway.projection).set.barrierIds(),
    });
  },
} satisfies SomeHandlers<XenopsdMethods>;

const GuestAgentFeatureTList = list(GuestAgentFeatureT);
