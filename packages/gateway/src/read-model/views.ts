import { parseJsonWire, powerStateOf, type TaskRecord, type TaskView, type VmAggregate, type VmState } from '@xenops/core';

/** Vm.state of API.md §4.3: neutral values without a domain, the simulator's record with one. */
export function vmStateOf(vm: VmAggregate): VmState {
  const d = vm.domain;
  if (!d) {
    return {
      ...NEUTRAL_STATE,
      power_state: powerStateOf(vm),
    };
  }
  return {
    ...NEUTRAL_STATE,
    power_state: powerStateOf(vm),
    domids: [d.domid],
    consoles: d.consoles.map((c) => ({ protocol: c.protocol, port: c.port, path: c.path })),
    memory_target: d.memoryTarget,
    memory_actual: d.memoryTarget,
    memory_limit: d.memoryLimit,
    vcpu_target: d.vcpus,
    shadow_multiplier_target: d.shadowMultiplier,
    rtc_timeoffset: d.rtcTimeoffset,
    xsdata_state: d.xsdata.map(([k, v]) => [k, v] as [string, string]),
    last_start_time: d.startTime,
    hvm: d.hvm,
    domain_type: d.domainType,
  };
}

const NEUTRAL_STATE: VmState = {
  power_state: 'Halted',
  domids: [],
  consoles: [],
  memory_target: 0,
  memory_actual: 0,
  memory_limit: 0,
  vcpu_target: 0,
  shadow_multiplier_target: 1.0,
  rtc_timeoffset: '',
  uncooperative_balloon_driver: false,
  guest_agent: [],
  xsdata_state: [],
  pv_drivers_detected: false,
  last_start_time: 0,
  hvm: false,
  nomigrate: false,
  nested_virt: false,
  domain_type: 'Domain_undefined',
  featureset: '',
  numa_optimised: false,
  numa_nodes: 0,
  numa_node_memory: [],
};

/** Task.t of §4.9 from the log's task record. */
export function taskViewOf(t: TaskRecord): TaskView {
  const state: TaskView['state'] =
    t.status === 'pending'
      ? ['Pending', t.progress]
      : t.status === 'completed'
        ? ['Completed', t.resultJson ? { duration: t.duration ?? 0, result: parseJsonWire(t.resultJson) } : { duration: t.duration ?? 0 }]
        : ['Failed', t.error ?? ['Internal_error', 'unknown failure']];
  return {
    id: t.id,
    dbg: t.dbg,
    ctime: t.ctimeMs / 1000,
    state,
    cancelPointsSeen: t.cancelPointsSeen,
    cancellable: t.cancellable,
  };
}

/** Ascending numeric order of task ids ("9" before "10", §7.1). */
export function compareTaskIds(a: string, b: string): number {
  return Number(a) - Number(b);
}
