import type { EventBody } from '../events/event.js';
import { VmT, type VmConfig } from '../idl/index.js';
import { emptyVm, evolveVmAll, type VmAggregate } from '../model/vm-aggregate.js';

/** A minimal valid HVM configuration (API.md §10's example), for tests of the pure model. */
export function testVmConfig(id: string, overrides: Partial<VmConfig> = {}): VmConfig {
  const base = VmT.decode(
    {
      id,
      name: id,
      ssidref: 0,
      xsdata: {},
      platformdata: {},
      bios_strings: {},
      ty: ['HVM', {}],
      suppress_spurious_page_faults: false,
      memory_static_max: 1073741824,
      memory_dynamic_max: 1073741824,
      memory_dynamic_min: 536870912,
      vcpu_max: 2,
      vcpus: 2,
      scheduler_params: { affinity: [] },
      on_crash: ['Shutdown'],
      on_shutdown: ['Shutdown'],
      on_reboot: ['Start'],
      pci_msitranslate: true,
      pci_power_mgmt: false,
    },
    'vm',
  );
  return { ...base, ...overrides };
}

/** A VM folded from `bodies`, one message each (seqs 1, 2, ...). */
export function testVm(id: string, bodies: readonly EventBody[]): VmAggregate {
  let vm = emptyVm(id);
  bodies.forEach((body, i) => {
    vm = evolveVmAll(vm, [{ seq: i + 1, audit: { dbg: 't', timeMs: 0, host: 'h', actor: `vm/${id}` }, body }]);
  });
  return vm;
}

/** The DomainCreated of a simulated domain of `id` on `host`. */
export function testDomainCreated(id: string, host = 'h', domid = 1, hvm = true): EventBody {
  return {
    type: 'DomainCreated',
    vmId: id,
    domid,
    host,
    startTime: 0,
    hvm,
    domainType: hvm ? 'Domain_HVM' : 'Domain_PV',
    vcpus: 2,
    memoryTarget: 1073741824,
    memoryLimit: 1073741824,
    shadowMultiplier: 1,
    rtcTimeoffset: '',
    xsdata: [],
    consoles: [],
  };
}
