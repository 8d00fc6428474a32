/** `Query.t` and `Host.t` (API.md §4.11). */
import { bool, dict, int, list, record, string, variant, type Infer } from './descriptor.js';

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
