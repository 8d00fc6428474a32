/**
 * Property tests: for every IDL type, internal values survive encode → (codec) → decode, in the
 * xenopsd and internal dialects, directly and through the JSON and an XML-RPC-like path; and the
 * seed encoding decodes to the §4.12 projection of the value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  str,
  nonEmpty,
  dictKey,
  dictOf,
  safeInt,
  nonNeg,
  int32,
  dbl,
  small,
  tag,
  rec,
  powerState,
  disk,
  pciAddress,
  network,
  deviceNumber,
  action,
  video,
  firmware,
  hvmInfo,
  boot,
  pvInfo,
  builderInfo,
  vm,
  vmState,
  qosClass,
  qos,
  deviceId,
  vbd,
  vbdState,
  ipConfig,
  vif,
  vifState,
  pci,
  vgpuImplementation,
  vgpu,
  vusb,
  metadata,
  errorValue,
  taskResult,
  task,
  dynamicId,
  maybe,
  dynamicChange,
} from '../testing/arbitraries.js';
import type { Dialect, Type } from './descriptor.js';
import {
  BarrierT,
  ConsoleT,
  DeviceNumberT,
  DiskT,
  DynamicIdT,
  DynamicT,
  ErrorT,
  GuestAgentFeatureT,
  HostT,
  MetadataT,
  NetworkT,
  NumaAffinityPolicyT,
  PciAddressT,
  PciStateT,
  PciT,
  PowerStateT,
  QosT,
  QueryT,
  RpcDouble,
  TaskT,
  UpdatesResultT,
  VbdStateT,
  VbdT,
  VgpuStateT,
  VgpuT,
  VifStateT,
  VifT,
  VmStateT,
  VmT,
  VusbStateT,
  VusbT,
  decodeVbd,
  firstLine,
  parseJsonWire,
  wireToJson,
  type BuilderInfo,
  type DynamicChange,
  type Metadata,
  type Network,
  type Pci,
  type TaskView,
  type Vbd,
  type Vif,
  type VmConfig,
  type VmState,
  type WireIn,
  type WireOut,
} from './index.js';

// ---------------------------------------------------------------------------------------------
// Codecs

/** What an XML-RPC parser would hand back for an encoded value: plain numbers, null-prototype structs. */
function xmlLike(w: WireOut): WireIn {
  if (w instanceof RpcDouble) return w.value;
  if (Array.isArray(w)) return w.map(xmlLike);
  if (w instanceof Map) {
    const o = Object.create(null) as { [k: string]: WireIn };
    for (const [k, v] of w) o[k] = xmlLike(v);
    return o;
  }
  return w;
}

const codecs: Array<[string, (w: WireOut) => unknown]> = [
  ['direct', (w) => w],
  ['json', (w) => parseJsonWire(wireToJson(w))],
  ['xml', xmlLike],
];

function assertRoundTrip<T>(t: Type<T>, arb: fc.Arbitrary<T>, project: Partial<Record<Dialect, (x: T) => T>> = {}, runs = 60): void {
  fc.assert(
    fc.property(arb, (x) => {
      for (const d of ['xenopsd', 'internal', ...(project.seed ? ['seed' as const] : [])] as Dialect[]) {
        const expected = (project[d] ?? ((v: T) => v))(x);
        for (const [, codec] of codecs) {
          expect(t.decode(codec(t.encode(x, d)), 'x')).toEqual(expected);
        }
      }
    }),
    { numRuns: runs },
  );
}

// ---------------------------------------------------------------------------------------------
// Projections: what survives a dialect

/** xenopsd drops `transient` (it reads back as false). */
const xenopsdVm = (v: VmConfig): VmConfig => ({ ...v, transient: false });
const xenopsdTask = (t: TaskView): TaskView => ({ ...t, dbg: firstLine(t.dbg) });

function omit<T extends object, K extends keyof T>(o: T, ...keys: K[]): T {
  const out = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

function seedBuilder(b: BuilderInfo): BuilderInfo {
  if (b[0] === 'HVM') {
    const h = omit(b[1], 'tpm');
    return ['HVM', { ...h, firmware: 'Bios', video: b[1].video === 'Cirrus' ? 'Cirrus' : 'Standard_VGA' }];
  }
  return ['PV', { ...omit(b[1], 'framebuffer_ip'), pci_passthrough: false }];
}
const seedActions = (l: VmConfig['on_crash']) => l.filter((a) => a !== 'Pause' && a !== 'Softreboot');

/** §4.12 projection of a Vm.t through the seed shape. */
function seedVm(v: VmConfig): VmConfig {
  return {
    ...omit(v, 'generation_id'),
    ty: seedBuilder(v.ty),
    on_crash: seedActions(v.on_crash),
    on_shutdown: seedActions(v.on_shutdown),
    on_reboot: seedActions(v.on_reboot),
    on_softreboot: ['Softreboot'],
    has_vendor_device: false,
  };
}

function seedVbd(v: Vbd, vmIsHvm = false): Vbd {
  const out: Vbd = { ...v, ty: v.ty === 'Floppy' ? 'Disk' : v.ty, persistent: true, can_attach_early: false };
  if (v.position) {
    const n = v.position[1];
    out.position = vmIsHvm && n < 4 ? ['Ide', n, 0] : ['Xen', n, 0];
  }
  return out;
}

function seedNetwork(n: Network): Network {
  if (n[0] === 'Remote') return ['Remote', ['', n[1][1]]];
  if (n[0] === 'Sriov') return ['Local', ''];
  return n;
}

function seedVif(v: Vif): Vif {
  return {
    ...omit(v, 'pvs_proxy', 'vlan'),
    backend: seedNetwork(v.backend),
    locking_mode: 'Unlocked',
    ipv4_configuration: 'Unspecified4',
    ipv6_configuration: 'Unspecified6',
    trunks: [],
  };
}

function seedMetadata(m: Metadata): Metadata {
  const hvm = m.vm.ty[0] === 'HVM';
  return { ...m, vm: seedVm(m.vm), vbds: m.vbds.map((v) => seedVbd(v, hvm)), vifs: m.vifs.map(seedVif), vgpus: [], vusbs: [] };
}

function xenopsdDynamic(c: DynamicChange): DynamicChange {
  if (c[0] === 'Vm_t' && c[1][1]) return ['Vm_t', [c[1][0], [xenopsdVm(c[1][1][0]), c[1][1][1]]]];
  if (c[0] === 'Task_t' && c[1][1]) return ['Task_t', [c[1][0], xenopsdTask(c[1][1])]];
  return c;
}

// ---------------------------------------------------------------------------------------------

describe('round trips (xenopsd and internal dialects; direct, JSON, XML-RPC-like)', () => {
  it('power_state, disk, Pci.address, Network.t, Device_number', () => {
    assertRoundTrip(PowerStateT, powerState);
    assertRoundTrip(DiskT, disk);
    assertRoundTrip(PciAddressT, pciAddress);
    assertRoundTrip(NetworkT, network);
    assertRoundTrip(DeviceNumberT, deviceNumber);
  });
  it('Vm.t', () => assertRoundTrip(VmT, vm, { xenopsd: xenopsdVm }, 100));
  it('Vm.state and console', () => {
    assertRoundTrip(VmStateT, vmState);
    assertRoundTrip(ConsoleT, fc.record({ protocol: fc.constantFrom('Rfb', 'Vt100' as const), port: safeInt, path: str }));
  });
  it('Vbd.t, Vbd.state, qos', () => {
    assertRoundTrip(VbdT, vbd);
    assertRoundTrip(VbdStateT, vbdState);
    assertRoundTrip(QosT, qos);
  });
  it('Vif.t, Vif.state', () => {
    assertRoundTrip(VifT, vif);
    assertRoundTrip(VifStateT, vifState);
  });
  it('Pci.t, Pci.state', () => {
    assertRoundTrip(PciT, pci);
    assertRoundTrip(PciStateT, fc.record({ plugged: fc.boolean() }));
  });
  it('Vgpu.t, Vgpu.state, Vusb.t, Vusb.state', () => {
    assertRoundTrip(VgpuT, vgpu);
    assertRoundTrip(VgpuStateT, rec({ active: fc.boolean(), plugged: fc.boolean() }, { emulator_pid: safeInt }));
    assertRoundTrip(VusbT, vusb);
    assertRoundTrip(VusbStateT, fc.record({ plugged: fc.boolean() }));
  });
  it('Metadata.t', () => assertRoundTrip(MetadataT, metadata, { xenopsd: (m) => ({ ...m, vm: xenopsdVm(m.vm) }) }, 40));
  it('Task.t (the xenopsd encoding shows dbg up to its first newline)', () =>
    assertRoundTrip(TaskT, task, { xenopsd: xenopsdTask }, 100));
  it('error values', () => assertRoundTrip(ErrorT, errorValue, {}, 200));
  it('Dynamic.id, barrier, UPDATES.get result, Dynamic.t', () => {
    assertRoundTrip(DynamicIdT, dynamicId);
    assertRoundTrip(BarrierT, fc.tuple(safeInt, small(dynamicId)));
    assertRoundTrip(UpdatesResultT, fc.tuple(small(fc.tuple(safeInt, small(dynamicId))), small(dynamicId), safeInt));
    assertRoundTrip(DynamicT, dynamicChange, { xenopsd: xenopsdDynamic }, 40);
  });
  it('Query.t, Host.t, guest_agent_feature, numa_affinity_policy', () => {
    assertRoundTrip(QueryT, fc.record({ name: str, vendor: str, version: str, features: small(str), instance_id: str }));
    const s = str;
    assertRoundTrip(
      HostT,
      fc.record({
        cpu_info: fc.record({
          cpu_count: safeInt,
          socket_count: safeInt,
          threads_per_core: safeInt,
          vendor: s,
          speed: s,
          modelname: s,
          family: s,
          model: s,
          stepping: s,
          flags: s,
          features: s,
          features_pv: s,
          features_hvm: s,
          features_pv_host: s,
          features_hvm_host: s,
        }),
        hypervisor: fc.record({ version: s, capabilities: s }),
        chipset_info: fc.record({ iommu: fc.boolean(), hvm: fc.boolean() }),
      }),
    );
    assertRoundTrip(GuestAgentFeatureT, fc.record({ name: str, licensed: fc.boolean(), parameters: dictOf(str) }));
    assertRoundTrip(NumaAffinityPolicyT, fc.constantFrom('Any', 'Best_effort', 'Best_effort_hard', 'Prio_mem_only' as const));
  });
});

describe('seed dialect: decode(encode(x, "seed")) is the §4.12 projection of x', () => {
  it('Vm.t', () => assertRoundTrip(VmT, vm, { xenopsd: xenopsdVm, seed: seedVm }, 100));
  it('Vbd.t (without and with the HVM context)', () => {
    assertRoundTrip(VbdT, vbd, { seed: (v) => seedVbd(v) });
    fc.assert(
      fc.property(vbd, fc.boolean(), (v, hvm) => {
        for (const [, codec] of codecs) {
          expect(decodeVbd(codec(VbdT.encode(v, 'seed')), 'vbd', { vmIsHvm: hvm })).toEqual(seedVbd(v, hvm));
          // The context only changes seed integer positions: a Device_number stays as it is.
          expect(decodeVbd(codec(VbdT.encode(v, 'xenopsd')), 'vbd', { vmIsHvm: hvm })).toEqual(v);
        }
      }),
      { numRuns: 60 },
    );
  });
  it('Vif.t', () => assertRoundTrip(VifT, vif, { seed: seedVif }));
  it('Pci.t (flat in the seed)', () => assertRoundTrip(PciT, pci, { seed: (p) => p }));
  it('Metadata.t', () =>
    assertRoundTrip(MetadataT, metadata, { xenopsd: (m) => ({ ...m, vm: xenopsdVm(m.vm) }), seed: seedMetadata }, 40));
  it('Vm.state: the fields the seed lacks read back as neutral values', () => {
    const neutral = VmStateT.decode({}, 'state');
    const seedFields = [
      'power_state',
      'domids',
      'consoles',
      'memory_target',
      'vcpu_target',
      'shadow_multiplier_target',
      'rtc_timeoffset',
      'uncooperative_balloon_driver',
      'guest_agent',
      'last_start_time',
    ] as const;
    assertRoundTrip(VmStateT, vmState, {
      seed: (s) => {
        const out: Record<string, unknown> = { ...neutral };
        for (const k of seedFields) out[k] = s[k];
        out['consoles'] = s.consoles.map((c) => ({ ...c, path: '' }));
        return out as VmState;
      },
    });
  });
});
