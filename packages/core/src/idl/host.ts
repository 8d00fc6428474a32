/** `Query.t` and `Host.t` (API.md §4.11). */
import { bool, dict, float, int, list, record, string, variant, type Infer } from './descriptor.js';

export const QueryT = record('Query.t', {
  name: string,
  vendor: string,
  version: string,
  features: list(string),
  instance_id: string,
});
export type QueryInfo = Infer<typeof QueryT>;

export const CpuInfoT = record('Host.cpu_info', {
  cpu_count: int,
  socket_count: int,
  threads_per_core: int,
  vendor: string,
  speed: string,
  modelname: string,
  family: string,
  model: string,
  stepping: string,
  flags: string,
  features: string,
  features_pv: string,
  features_hvm: string,
  features_pv_host: string,
  features_hvm_host: string,
});
export type CpuInfo = Infer<typeof CpuInfoT>;

export const HypervisorT = record('Host.hypervisor', { version: string, capabilities: string });
export const ChipsetInfoT = record('Host.chipset_info', { iommu: bool, hvm: bool });

export const HostT = record('Host.t', { cpu_info: CpuInfoT, hypervisor: HypervisorT, chipset_info: ChipsetInfoT });
export type HostInfo = Infer<typeof HostT>;

export const GuestAgentFeatureT = record('Host.guest_agent_feature', {
  name: string,
  licensed: bool,
  parameters: dict(string),
});
export type GuestAgentFeature = Infer<typeof GuestAgentFeatureT>;

export const NumaAffinityPolicyT = variant('Host.numa_affinity_policy', {
  Any: null,
  Best_effort: null,
  Best_effort_hard: null,
  Prio_mem_only: null,
});
export type NumaAffinityPolicy = Infer<typeof NumaAffinityPolicyT>;

/**
 * One host of the cluster as `HOST.list` shows it (API.md §9.7, extension). `started_at` and
 * `last_seen` are seconds since the epoch (like `last_start_time`, §4.3); memory is in bytes.
 */
export const HostRecordT = record('Host.record', {
  id: string,
  backend: string,
  version: string,
  state: string,
  started_at: float,
  last_seen: float,
  addresses: list(string),
  cpus: int,
  memory_total: int,
  memory_free: int,
  vms: list(string),
  running: int,
});
export type HostRecord = Infer<typeof HostRecordT>;
