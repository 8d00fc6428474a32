import type { HostFacts } from '@xenops/core';

/**
 * The simulator's host (API.md §8.1): counts 0, strings "unknown", empty featuresets, chipset
 * `{iommu: false, hvm: true}`, 1048576 MiB of memory, console data "xenops-ts simulator".
 */
export const SIMULATED_HOST: HostFacts = {
  host: {
    cpu_info: {
      cpu_count: 0,
      socket_count: 0,
      threads_per_core: 0,
      vendor: 'unknown',
      speed: 'unknown',
      modelname: 'unknown',
      family: 'unknown',
      model: 'unknown',
      stepping: 'unknown',
      flags: 'unknown',
      features: '',
      features_pv: '',
      features_hvm: '',
      features_pv_host: '',
      features_hvm_host: '',
    },
    hypervisor: { version: 'unknown', capabilities: 'unknown' },
    chipset_info: { iommu: false, hvm: true },
  },
  totalMemoryMib: 1048576,
  consoleData: 'xenops-ts simulator',
};
