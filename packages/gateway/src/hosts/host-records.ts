/**
 * `HOST.list` (API.md §9.7): the registry's heartbeats joined with what the read model knows of
 * each host's VMs. Up or Down is the reader's judgement of a registration's age; a host that owns
 * VMs but has no registration (it left the registry long ago) is listed Down, so that no VM's
 * owner is ever missing from the list.
 */
import { ownerOf, powerStateOf, type HostRecord, type HostRegistry, type VmAggregate } from '@xenops/core';
import type { Projection } from '../read-model/projection.js';

/** A host that has not refreshed its registration for this long is Down (§9.7). */
export const DEFAULT_HOST_DOWN_AFTER_MS = 15_000;

export interface HostView {
  readonly hosts: HostRegistry;
  readonly hostDownAfterMs: number;
  readonly projection: Projection;
}

/** Every host of the cluster, sorted by id. */
export async function hostRecords(view: HostView, now = Date.now()): Promise<HostRecord[]> {
  const owned = vmsByOwner(view.projection.vms.values());
  const records = new Map<string, HostRecord>();
  for (const reg of await view.hosts.list()) {
    const vms = owned.get(reg.id) ?? [];
    const used = vms.reduce((sum, vm) => sum + (vm.domain ? (vm.config?.memory_static_max ?? 0) : 0), 0);
    records.set(reg.id, {
      id: reg.id,
      backend: reg.backend,
      version: reg.version,
      state: now - reg.lastSeenMs <= view.hostDownAfterMs ? 'Up' : 'Down',
      started_at: reg.startedMs / 1000,
      last_seen: reg.lastSeenMs / 1000,
      addresses: [...reg.addresses],
      cpus: reg.cpus,
      memory_total: reg.memoryTotal,
      memory_free: Math.max(0, reg.memoryTotal - used),
      vms: vms.map((vm) => vm.id),
      running: vms.filter(hasLiveDomain).length,
    });
  }
  for (const [host, vms] of owned) {
    if (records.has(host)) continue;
    records.set(host, {
      id: host,
      backend: 'unknown',
      version: 'unknown',
      state: 'Down',
      started_at: 0,
      last_seen: 0,
      addresses: [],
      cpus: 0,
      memory_total: 0,
      memory_free: 0,
      vms: vms.map((vm) => vm.id),
      running: vms.filter(hasLiveDomain).length,
    });
  }
  return [...records.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * A VM that counts as running on its host: its domain is Running or Paused (xenopsd's VM.start
 * leaves it Paused, §7.3, and a paused domain holds its memory all the same).
 */
function hasLiveDomain(vm: VmAggregate): boolean {
  const power = powerStateOf(vm);
  return power === 'Running' || power === 'Paused';
}

function vmsByOwner(vms: Iterable<VmAggregate>): Map<string, VmAggregate[]> {
  const out = new Map<string, VmAggregate[]>();
  for (const vm of vms) {
    if (!vm.config) continue;
    const owner = ownerOf(vm);
    if (owner === undefined) continue;
    const list = out.get(owner) ?? [];
    list.push(vm);
    out.set(owner, list);
  }
  for (const list of out.values()) list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}
