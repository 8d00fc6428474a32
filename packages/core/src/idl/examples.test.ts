/** Example tests straight from API.md §3 (examples, accepted equivalents), §4, §4.12 and §6. */
import { describe, expect, it } from 'vitest';
import { XenopsError } from '../errors.js';
import {
  BuilderInfoT,
  DeviceNumberT,
  DynamicIdT,
  ErrorT,
  HvmInfoT,
  MetadataT,
  NetworkT,
  PciT,
  PriorityT,
  PvInfoT,
  QosT,
  RpcDouble,
  TaskT,
  VbdT,
  VgpuT,
  VifT,
  VmStateT,
  VmT,
  bool,
  decodeArgument,
  decodeField,
  decodeNamedArgument,
  decodeVbd,
  defaultOf,
  dict,
  encodeField,
  float,
  int,
  int32,
  list,
  option,
  parseJsonWire,
  string,
  tuple,
  unit,
  wireToJson,
  type VmConfig,
  type WireOut,
} from './index.js';

const json = (text: string) => parseJsonWire(text);
/** A struct as an XML-RPC parser gives it: a null-prototype object. */
function xmlStruct(o: Record<string, unknown>): Record<string, unknown> {
  return Object.assign(Object.create(null) as Record<string, unknown>, o);
}
const toJson = (w: WireOut) => wireToJson(w);

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    if (e instanceof XenopsError) return e.value;
    throw e;
  }
  throw new Error('expected a XenopsError');
}

const minimalVm = () =>
  json(`{"id":"5f0c","ssidref":0,"xsdata":{},"platformdata":{},"bios_strings":{},"ty":["PV",{"boot":["Direct",{}]}],
    "suppress_spurious_page_faults":false,"memory_static_max":1073741824,"memory_dynamic_max":1073741824,
    "memory_dynamic_min":536870912,"vcpu_max":2,"vcpus":2,"scheduler_params":{"affinity":[]},
    "on_crash":["Coredump"],"on_shutdown":["Shutdown"],"on_reboot":["Start"],"pci_msitranslate":true,"pci_power_mgmt":false}`) as Record<string, unknown>;

describe('§3 examples (JSON)', () => {
  it('ty: HVM with firmware Uefi; other keys take their defaults', () => {
    const ty = BuilderInfoT.decode(json('["HVM", {"hap": true, "video": "Standard_VGA", "firmware": ["Uefi", {"on_boot": "Reset"}]}]'), 'vm.ty');
    expect(ty).toEqual([
      'HVM',
      {
        hap: true,
        shadow_multiplier: 1,
        timeoffset: '',
        video_mib: 4,
        video: 'Standard_VGA',
        acpi: true,
        pci_emulations: [],
        pci_passthrough: false,
        boot_order: '',
        qemu_disk_cmdline: false,
        qemu_stubdom: false,
        firmware: ['Uefi', { on_boot: 'Reset', backend: 'xapidb' }],
      },
    ]);
    expect(toJson(BuilderInfoT.encode(ty, 'xenopsd'))).toBe(
      '["HVM",{"hap":true,"shadow_multiplier":1,"timeoffset":"","video_mib":4,"video":"Standard_VGA","acpi":true,' +
        '"pci_emulations":[],"pci_passthrough":false,"boot_order":"","qemu_disk_cmdline":false,"qemu_stubdom":false,' +
        '"firmware":["Uefi",{"on_boot":"Reset","backend":"xapidb"}]}]',
    );
    // shadow_multiplier is a float: XML-RPC must see a <double>.
    const hvm = BuilderInfoT.encode(ty, 'xenopsd') as [string, Map<string, WireOut>];
    expect(hvm[1].get('shadow_multiplier')).toBeInstanceOf(RpcDouble);
  });

  it('backend, position, qos, ipv4_configuration, priority, xsdata, Dynamic.id', () => {
    const vbd = VbdT.decode(
      json('{"id":["5f0c","xvda"],"backend":["VDI","sr-1/vdi-9"],"position":["Xen",0,0],"qos":["Ionice",["BestEffort","High"]]}'),
      'vbd',
    );
    expect(vbd.backend).toEqual(['VDI', 'sr-1/vdi-9']);
    expect(vbd.position).toEqual(['Xen', 0, 0]);
    expect(vbd.qos).toEqual(['Ionice', ['BestEffort', 'High']]);
    expect(toJson(VbdT.encode(vbd, 'xenopsd'))).toBe(
      '{"id":["5f0c","xvda"],"position":["Xen",0,0],"mode":"ReadWrite","backend":["VDI","sr-1/vdi-9"],"ty":"Disk",' +
        '"unpluggable":true,"extra_backend_keys":{},"extra_private_keys":{},"qos":["Ionice",["BestEffort","High"]],' +
        '"persistent":true,"can_attach_early":false}',
    );

    const some = VifT.decode(json('{"id":["v","0"],"ipv4_configuration":["Static4",[["10.0.0.2/24"],["10.0.0.1"]]]}'), 'vif');
    expect(some.ipv4_configuration).toEqual(['Static4', [['10.0.0.2/24'], '10.0.0.1']]);
    expect(toJson(VifT.encode(some, 'xenopsd'))).toContain('"ipv4_configuration":["Static4",[["10.0.0.2/24"],["10.0.0.1"]]]');
    const none = VifT.decode(json('{"id":["v","0"],"ipv4_configuration":["Static4",[["10.0.0.2/24"],[]]]}'), 'vif');
    expect(none.ipv4_configuration).toEqual(['Static4', [['10.0.0.2/24'], undefined]]);
    expect(toJson(VifT.encode(none, 'xenopsd'))).toContain('"ipv4_configuration":["Static4",[["10.0.0.2/24"],[]]]');

    const vm = VmT.decode({ ...minimalVm(), scheduler_params: json('{"priority":[256,0],"affinity":[[0,1]]}') }, 'vm');
    expect(vm.scheduler_params).toEqual({ priority: [256, 0], affinity: [[0, 1]] });
    const vm2 = VmT.decode({ ...minimalVm(), xsdata: json('{"vm-data/hostname":"web01"}') }, 'vm');
    expect(vm2.xsdata).toEqual([['vm-data/hostname', 'web01']]);

    expect(DynamicIdT.decode(json('["Vbd", ["5f0c", "xvda"]]'), 'id')).toEqual(['Vbd', ['5f0c', 'xvda']]);
  });

  it('an option as a method result: [] / [[Vm.t, Vm.state]]', () => {
    const statResult = option(tuple(VmT, VmStateT));
    expect(statResult.encode(undefined, 'seed')).toEqual([]);
    const vm = VmT.decode(minimalVm(), 'vm');
    const state = VmStateT.decode({}, 'state');
    const encoded = statResult.encode([vm, state], 'seed');
    expect(Array.isArray(encoded) && encoded.length === 1).toBe(true);
    expect(statResult.decode(parseJsonWire(toJson(encoded)), 'r')).toEqual([{ ...vm }, state]);
    expect(statResult.decode(null, 'r')).toBeUndefined();
  });
});

describe('§3 accepted equivalents', () => {
  it('video: "cirrus", ["Cirrus"], ["Cirrus", null], "CIRRUS", ["Cirrus", []]', () => {
    for (const v of ['"cirrus"', '["Cirrus"]', '["Cirrus", null]', '"CIRRUS"', '["Cirrus", []]']) {
      expect(HvmInfoT.decode(json(`{"video": ${v}, "video_mib": 8}`), 'hvm').video).toBe('Cirrus');
    }
  });

  it('vcpus: 2, 2.0, "2"', () => {
    for (const v of ['2', '2.0', '"2"']) expect(VmT.decode({ ...minimalVm(), vcpus: json(v) }, 'vm').vcpus).toBe(2);
  });

  it('machine_address_size: 36 or [36]; absent, null and [] are None', () => {
    expect(VmT.decode({ ...minimalVm(), machine_address_size: 36 }, 'vm').machine_address_size).toBe(36);
    expect(VmT.decode({ ...minimalVm(), machine_address_size: [36] }, 'vm').machine_address_size).toBe(36);
    for (const v of [null, []]) expect('machine_address_size' in VmT.decode({ ...minimalVm(), machine_address_size: v }, 'vm')).toBe(false);
    expect('machine_address_size' in VmT.decode(minimalVm(), 'vm')).toBe(false);
  });

  it('ramdisk: null, absent, []', () => {
    for (const boot of ['{"ramdisk": null}', '{}', '{"ramdisk": []}']) {
      const pv = PvInfoT.decode(json(`{"boot": ["Direct", ${boot}]}`), 'pv');
      expect(pv.boot).toEqual(['Direct', { kernel: '', cmdline: '' }]);
    }
    expect(PvInfoT.decode(json('{"boot": ["Direct", {"ramdisk": ["/r"]}]}'), 'pv').boot).toEqual(['Direct', { kernel: '', cmdline: '', ramdisk: '/r' }]);
  });

  it('record keys ignore case', () => {
    const vm = VmT.decode({ ...minimalVm(), MEMORY_STATIC_MAX: 2147483648, memory_static_max: undefined }, 'vm');
    expect(vm.memory_static_max).toBe(2147483648);
  });

  it('record keys: the exact spelling wins, else the last one equal ignoring case; an optional field stays absent', () => {
    const both = VmT.decode({ ...minimalVm(), Memory_Static_Max: 1, memory_static_max: 2, MEMORY_STATIC_MAX: 3 }, 'vm');
    expect(both.memory_static_max).toBe(2);
    const folded = VmT.decode({ ...minimalVm(), memory_static_max: undefined, Memory_Static_Max: 1, MEMORY_STATIC_MAX: 3 }, 'vm');
    expect(folded.memory_static_max).toBe(3);
    // Every key an exact field name (the log's own configs): absent options stay absent.
    const exact = VmT.decode(minimalVm(), 'vm');
    expect(exact).not.toHaveProperty('machine_address_size');
    const foreign = VmT.decode({ ...minimalVm(), Machine_Address_Size: [7] }, 'vm');
    expect(foreign.machine_address_size).toBe(7);
  });

  it('unknown record keys are ignored; dict keys keep case and order', () => {
    const vm = VmT.decode({ ...minimalVm(), whatever: 1, xsdata: json('{"B":"1","a":"2"}') }, 'vm');
    expect(vm.xsdata).toEqual([
      ['B', '1'],
      ['a', '2'],
    ]);
    expect(toJson(VmT.encode(vm, 'xenopsd'))).toContain('"xsdata":{"B":"1","a":"2"}');
  });

  it('dict: duplicate keys, the last wins', () => {
    const m = new Map<string, string>([
      ['k', 'first'],
      ['k', 'second'],
    ]);
    expect(dict(string).decode(m, 'd')).toEqual([['k', 'second']]);
    expect(dict(string).decode(json('{"k":"first","x":"y","k":"second"}'), 'd')).toEqual([
      ['k', 'second'],
      ['x', 'y'],
    ]);
  });

  it('unit: null, absent, []', () => {
    for (const v of [null, undefined, []]) expect(unit.decode(v, 'u')).toBeNull();
    expect(unit.encode(null, 'xenopsd')).toBeNull();
  });

  it('bool: true/false and XML boolean text 1, 0, true, false', () => {
    expect(bool.decode(true, 'b')).toBe(true);
    expect(bool.decode('1', 'b')).toBe(true);
    expect(bool.decode('0', 'b')).toBe(false);
    expect(bool.decode('true', 'b')).toBe(true);
    expect(bool.decode('false', 'b')).toBe(false);
    expect((errorOf(() => bool.decode('yes', 'b')) as string[])[1]).toMatch(/^Type error at b: expected bool/);
  });

  it('float: ints and decimal strings; always emitted as a double', () => {
    expect(float.decode(3, 'f')).toBe(3);
    expect(float.decode('1.5', 'f')).toBe(1.5);
    expect(float.encode(1, 'xenopsd')).toEqual(new RpcDouble(1));
    expect(toJson(float.encode(1, 'xenopsd'))).toBe('1');
  });

  it('float: NaN and ±Infinity are type errors (JSON `1e999`, XML `<double>NaN</double>`): no wire carries them back', () => {
    for (const w of [parseJsonWire('1e999'), parseJsonWire('-1e999'), Number.NaN, '1e999', 'NaN', 'Infinity', new RpcDouble(Infinity)]) {
      expect((errorOf(() => float.decode(w, 'vm.ty.HVM.shadow_multiplier')) as string[])[1]).toMatch(/^Type error at vm\.ty\.HVM\.shadow_multiplier: expected float/);
    }
    expect((errorOf(() => float.decode(parseJsonWire('1e999'), 'f')) as string[])[1]).toBe('Type error at f: expected float, got Infinity');
  });
});

describe('§3 XML-RPC forms', () => {
  it('the XML Vbd.t example', () => {
    const w = xmlStruct({
      id: ['5f0c', 'xvda'],
      mode: 'ReadOnly',
      backend: ['Local', '/dev/sr0'],
      ty: 'CDROM',
      extra_backend_keys: xmlStruct({ mode: 'r' }),
    });
    expect(VbdT.decode(w, 'vbd')).toEqual({
      id: ['5f0c', 'xvda'],
      mode: 'ReadOnly',
      backend: ['Local', '/dev/sr0'],
      ty: 'CDROM',
      unpluggable: true,
      extra_backend_keys: [['mode', 'r']],
      extra_private_keys: [],
      persistent: true,
      can_attach_early: false,
    });
  });

  it('<int>5</int>, <i4>5</i4>, <i8>5</i8> and <value>5</value> all decode as the int 5', () => {
    // A parser gives numbers for the tagged forms and the text "5" for the untagged one.
    expect(int.decode(5, 'n')).toBe(5);
    expect(int.decode('5', 'n')).toBe(5);
    expect(int32.decode('5', 'n')).toBe(5);
    expect(float.decode('5', 'n')).toBe(5);
    expect(string.decode('', 's')).toBe('');
  });
});

describe('§6.3 error messages', () => {
  it('missing record key', () => {
    const w = minimalVm();
    delete w['ssidref'];
    expect(errorOf(() => VmT.decode(w, 'vm'))).toEqual(['Internal_error', "No value found for key 'ssidref' in Vm.t"]);
    expect(errorOf(() => PciT.decode(json('{"id":["v","0"],"position":0,"address":{"domain":0,"bus":0,"dev":0}}'), 'pci'))).toEqual([
      'Internal_error',
      "No value found for key 'fn' in Pci.address",
    ]);
  });

  it('wrong shape: the path names the field', () => {
    const w = { ...minimalVm(), ty: json('["HVM", {"video_mib": "four"}]') };
    const e = errorOf(() => VmT.decode(w, 'vm')) as [string, string];
    expect(e[0]).toBe('Internal_error');
    expect(e[1].startsWith('Type error at vm.ty.HVM.video_mib: expected int')).toBe(true);
    const e2 = errorOf(() => VmT.decode({ ...minimalVm(), on_crash: ['Coredump', 'Explode'] }, 'vm')) as [string, string];
    expect(e2[1].startsWith('Type error at vm.on_crash[1]: expected Vm.action')).toBe(true);
    const e3 = errorOf(() => VmT.decode({ ...minimalVm(), xsdata: [] }, 'vm')) as [string, string];
    expect(e3[1].startsWith('Type error at vm.xsdata: expected dict<string>')).toBe(true);
  });

  it('int32 out of range', () => {
    expect(errorOf(() => VmT.decode({ ...minimalVm(), ssidref: 2147483648 }, 'vm'))).toEqual(['Internal_error', 'Integer out of range at vm.ssidref']);
    expect(VmT.decode({ ...minimalVm(), ssidref: 2147483647 }, 'vm').ssidref).toBe(2147483647);
    expect(VmT.decode({ ...minimalVm(), ssidref: -2147483648 }, 'vm').ssidref).toBe(-2147483648);
    expect(errorOf(() => int32.decode('-2147483649', 'x'))).toEqual(['Internal_error', 'Integer out of range at x']);
  });

  it('int64 edges: 2^53-1 is fine, 2^53 is out of range', () => {
    expect(int.decode(2 ** 53 - 1, 'n')).toBe(2 ** 53 - 1);
    expect(int.decode(-(2 ** 53 - 1), 'n')).toBe(-(2 ** 53 - 1));
    expect(int.decode('9007199254740991', 'n')).toBe(2 ** 53 - 1);
    expect(errorOf(() => int.decode(2 ** 53, 'n'))).toEqual(['Internal_error', 'Integer out of range at n']);
    expect(errorOf(() => int.decode('9007199254740992', 'n'))).toEqual(['Internal_error', 'Integer out of range at n']);
    expect(errorOf(() => int.decode(parseJsonWire('9007199254740993'), 'n'))).toEqual(['Internal_error', 'Integer out of range at n']);
    expect(errorOf(() => VmT.decode({ ...minimalVm(), memory_static_max: 2 ** 53 }, 'vm'))).toEqual([
      'Internal_error',
      'Integer out of range at vm.memory_static_max',
    ]);
  });

  it('non-integral numbers are type errors', () => {
    expect((errorOf(() => int.decode(2.5, 'n')) as string[])[1]).toMatch(/^Type error at n: expected int/);
    expect((errorOf(() => int.decode('2.5', 'n')) as string[])[1]).toMatch(/^Type error at n: expected int/);
  });

  it('empty ids: VM id and either part of a device id', () => {
    expect(errorOf(() => VmT.decode({ ...minimalVm(), id: '' }, 'vm'))).toEqual(['Internal_error', 'invalid id']);
    expect(errorOf(() => VbdT.decode({ id: ['', 'xvda'] }, 'vbd'))).toEqual(['Internal_error', 'invalid id']);
    expect(errorOf(() => VifT.decode({ id: ['vm', ''] }, 'vif'))).toEqual(['Internal_error', 'invalid id']);
  });

  it('Device_number ranges', () => {
    expect(DeviceNumberT.decode(['Xen', 1048575, 15], 'p')).toEqual(['Xen', 1048575, 15]);
    expect(DeviceNumberT.decode(['ide', 19, 63], 'p')).toEqual(['Ide', 19, 63]);
    for (const bad of [['Xen', 1048576, 0], ['Xen', 0, 16], ['Scsi', 16, 0], ['Floppy', 3, 0], ['Floppy', 0, 1], ['Ide', 20, 0], ['Ide', 0, 64], ['Xen', -1, 0]]) {
      expect((errorOf(() => DeviceNumberT.decode(bad, 'vbd.position')) as string[])[1]).toMatch(/^Integer out of range at vbd\.position/);
    }
  });
});

describe('unknown variant tags', () => {
  it('video → Cirrus, Vgpu implementation → Empty', () => {
    expect(HvmInfoT.decode({ video: 'Voodoo' }, 'hvm').video).toBe('Cirrus');
    expect(HvmInfoT.decode({ video: ['Voodoo', 3] }, 'hvm').video).toBe('Cirrus');
    expect(VgpuT.decode({ id: ['v', 'g'], implementation: ['Intel_future', {}] }, 'vgpu').implementation).toBe('Empty');
    expect(VgpuT.decode({ id: ['v', 'g'] }, 'vgpu')).toEqual({
      id: ['v', 'g'],
      position: 0,
      physical_pci_address: { domain: 0, bus: 0, dev: 0, fn: 0 },
      implementation: 'Empty',
    });
    expect(VgpuT.decode({ id: ['v', 'g'], implementation: ['Nvidia', {}] }, 'vgpu').implementation).toEqual([
      'Nvidia',
      { virtual_pci_address: { domain: 0, bus: 0, dev: 11, fn: 0 }, extra_args: '' },
    ]);
  });

  it('types without a default fail', () => {
    expect((errorOf(() => QosT.decode(['Nice', 'Idle'], 'vbd.qos')) as string[])[1]).toMatch(/^Type error at vbd\.qos: expected Vbd\.qos/);
  });
});

describe('§4.12 seed shapes', () => {
  const seedVm = () =>
    json(`{"id":"s1","name":"n","ssidref":0,"xsdata":{},"platformdata":{},"bios_strings":{},
      "ty":["HVM",{"hap":true,"shadow_multiplier":1.1,"timeoffset":"","video_mib":4,"video":["Cirrus"],"acpi":true,
      "serial":["pty"],"keymap":[],"vnc_ip":null,"pci_emulations":[],"pci_passthrough":false,"boot_order":"cd",
      "qemu_disk_cmdline":false,"qemu_stubdom":false}],
      "suppress_spurious_page_faults":false,"machine_address_size":[],"memory_static_max":1,"memory_dynamic_max":1,
      "memory_dynamic_min":1,"vcpu_max":1,"vcpus":1,"scheduler_params":{"priority":[{"weight":256,"cap":0}],"affinity":[[0,1],[0,1]]},
      "on_crash":["Coredump"],"on_shutdown":["Shutdown"],"on_reboot":["Start"],"transient":true,"pci_msitranslate":true,"pci_power_mgmt":true}`);

  it('seed Vm.t decodes into the internal model; the seed encoding has the 21 seed keys', () => {
    const vm = VmT.decode(seedVm(), 't');
    expect(vm.transient).toBe(true);
    expect(vm.scheduler_params.priority).toEqual([256, 0]);
    expect(vm.on_softreboot).toEqual(['Softreboot']);
    expect(vm.has_vendor_device).toBe(false);
    expect(vm.ty[0] === 'HVM' && vm.ty[1].serial).toBe('pty');
    expect(vm.ty[0] === 'HVM' && vm.ty[1].firmware).toBe('Bios');
    const seed = VmT.encode(vm, 'seed') as Map<string, WireOut>;
    expect([...seed.keys()]).toEqual([
      'id',
      'name',
      'ssidref',
      'xsdata',
      'platformdata',
      'bios_strings',
      'ty',
      'suppress_spurious_page_faults',
      'memory_static_max',
      'memory_dynamic_max',
      'memory_dynamic_min',
      'vcpu_max',
      'vcpus',
      'scheduler_params',
      'on_crash',
      'on_shutdown',
      'on_reboot',
      'transient',
      'pci_msitranslate',
      'pci_power_mgmt',
    ]); // machine_address_size is the 21st, left out because it is None
    expect(toJson(seed.get('scheduler_params')!)).toBe('{"priority":{"weight":256,"cap":0},"affinity":[[0,1],[0,1]]}');
    const xen = VmT.encode(vm, 'xenopsd') as Map<string, WireOut>;
    expect(xen.has('transient')).toBe(false);
    expect((VmT.encode(vm, 'internal') as Map<string, WireOut>).get('transient')).toBe(true);
  });

  it('seed encodings of the modern-only values', () => {
    const vm: VmConfig = {
      ...VmT.decode(minimalVm(), 'vm'),
      ty: ['PVH', PvInfoT.decode({ boot: ['Direct', {}], framebuffer_ip: 'x', pci_passthrough: true }, 'pv')],
      on_crash: ['Pause', 'Coredump', 'Softreboot'],
      generation_id: 'g',
    };
    const seed = toJson(VmT.encode(vm, 'seed'));
    expect(seed).toContain('"ty":["PV",{"boot":["Direct",{"kernel":"","cmdline":""}],"framebuffer":true,"vncterm":true}]');
    expect(seed).toContain('"on_crash":["Coredump"]');
    expect(seed).not.toContain('generation_id');
    for (const video of ['Vgpu', ['IGD_passthrough', 'GVT_d']] as const) {
      const hvm = HvmInfoT.decode({ video }, 'hvm');
      expect((HvmInfoT.encode(hvm, 'seed') as Map<string, WireOut>).get('video')).toBe('Standard_VGA');
      expect((HvmInfoT.encode(hvm, 'seed') as Map<string, WireOut>).size).toBe(11); // the 14 seed keys, less the 3 None options
    }
  });

  it('Vm.state: the seed shows only its 10 fields', () => {
    const s = VmStateT.decode({ consoles: [{ protocol: 'Rfb', port: 5901, path: '' }] }, 's');
    const seed = VmStateT.encode(s, 'seed') as Map<string, WireOut>;
    expect([...seed.keys()]).toEqual([
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
    ]);
    expect(toJson(seed.get('consoles')!)).toBe('[{"protocol":"Rfb","port":5901}]');
    expect((VmStateT.encode(s, 'xenopsd') as Map<string, WireOut>).size).toBe(22);
  });

  it('VBD position: an integer is Xen n, or Ide n for an HVM VM and n < 4', () => {
    expect(VbdT.decode({ id: ['v', 'hda'], position: 1 }, 'vbd').position).toEqual(['Xen', 1, 0]);
    expect(decodeVbd({ id: ['v', 'hda'], position: 1 }, 'vbd', { vmIsHvm: true }).position).toEqual(['Ide', 1, 0]);
    expect(decodeVbd({ id: ['v', 'hda'], position: [3] }, 'vbd', { vmIsHvm: true }).position).toEqual(['Ide', 3, 0]);
    expect(decodeVbd({ id: ['v', 'hde'], position: 4 }, 'vbd', { vmIsHvm: true }).position).toEqual(['Xen', 4, 0]);
    expect(decodeVbd({ id: ['v', 'x'], position: ['Xen', 1, 0] }, 'vbd', { vmIsHvm: true }).position).toEqual(['Xen', 1, 0]);
    const vbd = VbdT.decode({ id: ['v', 'fd'], position: ['Scsi', 2, 3], ty: 'Floppy', persistent: false }, 'vbd');
    expect(toJson(VbdT.encode(vbd, 'seed'))).toBe(
      '{"id":["v","fd"],"position":2,"mode":"ReadWrite","ty":"Disk","unpluggable":true,"extra_backend_keys":{},"extra_private_keys":{}}',
    );
  });

  it('Metadata: HVM context applies to its VBDs; vgpus/vusbs omitted for the seed', () => {
    const m = MetadataT.decode(
      json(`{"vm": ${JSON.stringify(toJsonObject(VmT.decode(seedVm(), 'vm')))}, "vbds": [{"id":["s1","hda"],"position":0}], "vifs": [], "pcis": []}`),
      'metadata',
    );
    expect(m.vbds[0]!.position).toEqual(['Ide', 0, 0]);
    expect(m.vgpus).toEqual([]);
    expect([...(MetadataT.encode(m, 'seed') as Map<string, WireOut>).keys()]).toEqual(['vm', 'vbds', 'vifs', 'pcis']);
    expect([...(MetadataT.encode(m, 'xenopsd') as Map<string, WireOut>).keys()]).toEqual(['vm', 'vbds', 'vifs', 'pcis', 'vgpus', 'vusbs']);
  });

  it('Network Remote: a seed switch name; Sriov shown as Local ""', () => {
    expect(NetworkT.decode(['Remote', 'sw0'], 'n')).toEqual(['Remote', ['', 'sw0']]);
    expect(NetworkT.decode(['Remote', ['vm2', 'sw0']], 'n')).toEqual(['Remote', ['vm2', 'sw0']]);
    expect(NetworkT.encode(['Remote', ['vm2', 'sw0']], 'seed')).toEqual(['Remote', 'sw0']);
    expect(NetworkT.encode(['Remote', ['vm2', 'sw0']], 'xenopsd')).toEqual(['Remote', ['vm2', 'sw0']]);
    expect(NetworkT.encode(['Sriov', { domain: 0, bus: 1, dev: 2, fn: 3 }], 'seed')).toEqual(['Local', '']);
  });

  it('Vif rate: pair or record, both dialects', () => {
    const a = VifT.decode({ id: ['v', '0'], rate: [100, 50] }, 'vif');
    const b = VifT.decode({ id: ['v', '0'], rate: { KBYTES_PER_SEC: 100, timeslice_us: 50 } }, 'vif');
    expect(a).toEqual(b);
    expect(toJson(VifT.encode(a, 'seed'))).toContain('"rate":{"kbytes_per_sec":100,"timeslice_us":50}');
    expect(toJson(VifT.encode(a, 'xenopsd'))).toContain('"rate":[100,50]');
    expect(PriorityT.decode({ weight: 1, cap: 2 }, 'p')).toEqual([1, 2]);
  });

  it('Pci: flat or nested, both dialects', () => {
    const flat = PciT.decode({ id: ['v', '0'], position: 2, domain: 0, bus: 3, dev: 4, fn: 1, msitranslate: true }, 'pci');
    const nested = PciT.decode({ id: ['v', '0'], position: 2, address: { domain: 0, bus: 3, dev: 4, fn: 1 }, msitranslate: [true] }, 'pci');
    expect(flat).toEqual(nested);
    expect(toJson(PciT.encode(flat, 'seed'))).toBe('{"id":["v","0"],"position":2,"domain":0,"bus":3,"dev":4,"fn":1,"msitranslate":true}');
    expect(toJson(PciT.encode(flat, 'xenopsd'))).toBe('{"id":["v","0"],"position":2,"address":{"domain":0,"bus":3,"dev":4,"fn":1},"msitranslate":true}');
  });
});

describe('Task.t', () => {
  const base = { id: '12', dbg: 'client-1\ntraceparent=00-abc', ctime: 1795780800.25, cancelPointsSeen: 9, cancellable: true } as const;

  it('xenopsd: the §4.9 example', () => {
    const t = { ...base, state: ['Completed', { duration: 0.04 }] as ['Completed', { duration: number }] };
    expect(toJson(TaskT.encode(t, 'xenopsd'))).toBe(
      '{"id":"12","dbg":"client-1","ctime":1795780800.25,"state":["Completed",{"duration":0.04}],' +
        '"subtasks":{},"debug_info":{"cancel_points_seen":"9"},"backtrace":"()","cancellable":true}',
    );
    expect(TaskT.decode(TaskT.encode(t, 'internal'), 't')).toEqual(t);
  });

  it('results and failures', () => {
    const done = { ...base, state: ['Completed', { duration: 1, result: { rc: 0, stdout: '', stderr: '' } }] as const };
    expect(toJson(TaskT.encode(done as never, 'xenopsd'))).toContain('"state":["Completed",{"duration":1,"result":{"rc":0,"stdout":"","stderr":""}}]');
    const failed = { ...base, state: ['Failed', ['Failed_to_shutdown', ['vm1', 30]]] as const };
    const enc = TaskT.encode(failed as never, 'xenopsd') as Map<string, WireOut>;
    const state = enc.get('state') as [string, [string, [string, WireOut]]];
    expect(state[1][1][1]).toEqual(new RpcDouble(30)); // a float: <double> in XML-RPC
  });

  it('seed: {id, result, subtasks}; a failure is the compact JSON text of the seed-encoded error', () => {
    const failed = { ...base, state: ['Failed', ['Bad_power_state', ['Running', 'Halted']]] as const };
    expect(toJson(TaskT.encode(failed as never, 'seed'))).toBe(
      '{"id":"12","result":["Failed","[\\"Bad_power_state\\",[\\"Running\\",\\"Halted\\"]]"],"subtasks":{}}',
    );
    const seedFailed = TaskT.encode({ ...base, state: ['Failed', ['Invalid_vcpus', 2]] }, 'seed') as Map<string, WireOut>;
    expect(seedFailed.get('result')).toEqual(['Failed', '["Maximum_vcpus",2]']);
    const exists = TaskT.encode({ ...base, state: ['Failed', ['Already_exists', ['domain', 'vm1']]] }, 'seed') as Map<string, WireOut>;
    expect(exists.get('result')).toEqual(['Failed', '"Already_exists"']);
    expect(toJson(TaskT.encode({ ...base, state: ['Pending', 0.5] }, 'seed'))).toBe('{"id":"12","result":["Pending",0.5],"subtasks":{}}');
    expect(toJson(TaskT.encode({ ...base, state: ['Completed', { duration: 2.5 }] }, 'seed'))).toBe('{"id":"12","result":["Completed",2.5],"subtasks":{}}');
  });
});

describe('§6 error values', () => {
  it('xenopsd: unchanged', () => {
    expect(ErrorT.encode(['Bad_power_state', ['Running', 'Halted']], 'xenopsd')).toEqual(['Bad_power_state', ['Running', 'Halted']]);
    expect(ErrorT.encode('Domain_not_built', 'xenopsd')).toBe('Domain_not_built');
    expect(ErrorT.encode(['Already_exists', ['domain', 'vm1']], 'xenopsd')).toEqual(['Already_exists', ['domain', 'vm1']]);
  });

  it('seed mapping of §6.4', () => {
    const seed = (e: Parameters<typeof ErrorT.encode>[0]) => ErrorT.encode(e, 'seed');
    expect(seed(['Already_exists', ['vbd', '0']])).toBe('Already_exists');
    expect(seed(['Invalid_vcpus', 4])).toEqual(['Maximum_vcpus', 4]);
    expect(seed('Failed_to_acknowledge_shutdown_request')).toBe('Failed_to_achnowledge_shutdown_request');
    expect(seed(['Failed_to_shutdown', ['vm1', 30]])).toBe('Failed_to_shutdown');
    expect(seed(['Device_detach_rejected', ['vbd', 'x', 'busy']])).toBe('Device_detach_rejected');
    expect(seed(['Bootloader_error', ['pygrub', 'no kernel']])).toEqual(['Bootloader_error', ['pygrub', ['no kernel']]]);
    expect(seed(['Unimplemented', 'Vm.exists'])).toEqual(['Unimplemented', 'Vm.exists']);
    expect(seed(['Does_not_exist', ['VM', 'x/config']])).toEqual(['Does_not_exist', ['VM', 'x/config']]);
    expect(seed(['Internal_error', 'boom'])).toEqual(['Internal_error', 'boom']);
    expect(seed(['Cancelled', '12'])).toEqual(['Cancelled', '12']);
    expect(seed(['Failed_to_suspend', ['vm1', 1200]])).toEqual(['Failed_to_suspend', ['vm1', new RpcDouble(1200)]]);
    expect(seed('Failed_to_acknowledge_suspend_request')).toBe('Failed_to_acknowledge_suspend_request');
    expect(seed('Device_is_connected')).toBe('Device_is_connected');
  });

  it('decoding: unknown tags give Unknown_error; tags ignore case', () => {
    expect(ErrorT.decode(['Something_new', 1], 'e')).toBe('Unknown_error');
    expect(ErrorT.decode('Brand_new', 'e')).toBe('Unknown_error');
    expect(ErrorT.decode(['internal_error', 'x'], 'e')).toEqual(['Internal_error', 'x']);
    expect(ErrorT.decode(['Bad_power_state', ['Running', 'Halted']], 'e')).toEqual(['Bad_power_state', ['Running', 'Halted']]);
    expect(ErrorT.decode('Already_exists', 'e')).toBe('Already_exists');
  });
});

describe('argument helpers (§2.5)', () => {
  it('defaultOf: unit, option, bool, dict have one; others are required', () => {
    expect(defaultOf(unit)).toEqual({ value: null });
    expect(defaultOf(option(float))).toEqual({ value: undefined });
    expect(defaultOf(bool)).toEqual({ value: false });
    expect(defaultOf(dict(string))).toEqual({ value: [] });
    expect(defaultOf(int)).toBeUndefined();
    expect(defaultOf(list(string))).toBeUndefined();
    expect(defaultOf(VmT)).toBeUndefined();
  });

  it('decodeField/encodeField: bare options in named-argument position', () => {
    const delay = option(float);
    expect(decodeField(delay, 30, 'delay')).toBe(30);
    expect(decodeField(delay, [30], 'delay')).toBe(30);
    expect(decodeField(delay, null, 'delay')).toBeUndefined();
    expect(decodeField(delay, [], 'delay')).toBeUndefined();
    expect(encodeField(delay, 30, 'xenopsd')).toEqual(new RpcDouble(30));
    expect(encodeField(delay, undefined, 'xenopsd')).toBeUndefined();
    expect(decodeField(int, '7', 'n')).toBe(7);
  });
});

/** The xenopsd JSON object of a Vm.t (for building metadata documents). */
function toJsonObject(vm: VmConfig): unknown {
  return JSON.parse(toJson(VmT.encode(vm, 'xenopsd')));
}

describe('decodeArgument / decodeNamedArgument', () => {
  it('absent arguments take the §2.5 defaults or fail', () => {
    const params = parseJsonWire('{"debug_info":"x","ID":"vm1","delay":[5]}');
    expect(decodeNamedArgument(string, params, 'id')).toBe('vm1');
    expect(decodeNamedArgument(option(float), params, 'delay')).toBe(5);
    expect(decodeNamedArgument(option(float), params, 'timeout')).toBeUndefined();
    expect(decodeNamedArgument(bool, params, 'force')).toBe(false);
    expect(decodeNamedArgument(dict(string), params, 'xsdata')).toEqual([]);
    expect(decodeNamedArgument(unit, params, 'unit')).toBeNull();
    expect(errorOf(() => decodeNamedArgument(int, params, 'vcpus'))).toEqual(['Internal_error', "Expecting named argument 'vcpus'"]);
    expect(decodeArgument(unit, null, 'unit')).toBeNull();
  });
});
