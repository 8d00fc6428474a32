import { describe, expect, it } from 'vitest';
import { parseConfig } from './config-file.js';
import { CliError } from './errors.js';
import { parseXlConfig, XlConfigError } from './xl-config.js';
import { parseDiskSpec, parsePciSpec, parseVifSpec, positionOfVdev } from './xl-devices.js';

const MiB = 1024 * 1024;
const UUID = '5f0c7a3e-2b1d-4c55-9a10-0123456789ab';

const HVM = `# a web server
name = "web01"
uuid = "${UUID}"
type = "hvm"
memory = 1024
maxmem = 2048
vcpus = 2
maxvcpus = 4
boot = "cd"
vga = "stdvga"
on_crash = "coredump-restart"
cpus = "0-1"
cpu_weight = 512
disk = [ 'phy:/dev/vg/disk1,xvda,w',
         'file:/srv/iso/d.iso,hdc:cdrom,r', ]   # trailing comma
vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr1,mtu=9000' ]
pci = [ '0000:00:02.0', '01:00.1,msitranslate=0' ]
`;

function errorOf(f: () => unknown): CliError {
  try {
    f();
  } catch (e) {
    if (e instanceof CliError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('xl config files', () => {
  it('parses an HVM config into Vm.t, VBDs, VIFs and PCIs', () => {
    const doc = parseConfig(HVM, 'web01.cfg');
    expect(doc.format).toBe('xl');
    const vm = doc.vm as Record<string, any>;
    expect(vm.id).toBe(UUID);
    expect(vm.name).toBe('web01');
    expect(vm.ty[0]).toBe('HVM');
    expect(vm.ty[1]).toMatchObject({ boot_order: 'cd', video: 'Standard_VGA' });
    expect(vm.memory_static_max).toBe(2048 * MiB);
    expect(vm.memory_dynamic_max).toBe(1024 * MiB);
    expect(vm.memory_dynamic_min).toBe(1024 * MiB);
    expect([vm.vcpus, vm.vcpu_max]).toEqual([2, 4]);
    expect(vm.on_crash).toEqual(['Coredump', 'Start']);
    expect(vm.scheduler_params).toEqual({ priority: [512, 0], affinity: [[0, 1], [0, 1], [0, 1], [0, 1]] });
    expect(doc.vbds).toEqual([
      expect.objectContaining({ id: [UUID, 'xvda'], mode: 'ReadWrite', ty: 'Disk', backend: ['Local', '/dev/vg/disk1'], position: ['Xen', 0, 0] }),
      expect.objectContaining({ id: [UUID, 'hdc'], mode: 'ReadOnly', ty: 'CDROM', backend: ['Local', '/srv/iso/d.iso'], position: ['Ide', 2, 0] }),
    ]);
    expect(doc.vifs).toEqual([expect.objectContaining({ id: [UUID, '0'], position: 0, mac: '00:16:3e:00:00:01', mtu: 9000, backend: ['Local', 'xenbr1'] })]);
    expect(doc.pcis).toEqual([
      expect.objectContaining({ id: [UUID, '0'], position: 0, address: { domain: 0, bus: 0, dev: 2, fn: 0 } }),
      expect.objectContaining({ id: [UUID, '1'], position: 1, address: { domain: 0, bus: 1, dev: 0, fn: 1 }, msitranslate: false }),
    ]);
    expect(doc.warnings).toEqual([]);
  });

  it('parses a PV direct-boot config, makes a uuid, warns about unknown keys', () => {
    const doc = parseConfig(
      `name='pv1'\nkernel = "/boot/vmlinuz"\nramdisk = "/boot/initrd"\nroot = "/dev/xvda1 ro"\nextra = "console=hvc0"\nmemory = 256\nviridian = 1\n`,
      'pv1.cfg',
    );
    const vm = doc.vm as Record<string, any>;
    expect(vm.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(vm.ty).toEqual(['PV', expect.objectContaining({ boot: ['Direct', { kernel: '/boot/vmlinuz', cmdline: 'root=/dev/xvda1 ro console=hvc0', ramdisk: '/boot/initrd' }] })]);
    expect(vm.vcpus).toBe(1);
    expect(doc.warnings).toEqual(["pv1.cfg:7: 'viridian' is not supported by xenops; ignored"]);
  });

  it('parses a bootloader config and += appends', () => {
    const doc = parseConfig(`name = "b"\nbootloader = "pygrub"\ndisk = ['phy:/dev/a,xvda,w']\ndisk += ['phy:/dev/b,xvdb,r']\n`, 'b.cfg');
    expect((doc.vm as any).ty[1].boot[0]).toBe('Indirect');
    expect((doc.vm as any).ty[1].boot[1].bootloader).toBe('pygrub');
    expect(doc.vbds.map((d) => (d.id as string[])[1])).toEqual(['xvda', 'xvdb']);
  });

  it.each([
    ['name = "x"\nmemory = \n', 'x.cfg:2: expected a value'],
    ['name = "x"\nmemory 512\n', "x.cfg:2: expected '=' after 'memory'"],
    ['name = "x"\n\nkernel = "/boot/vmlinuz\n', 'x.cfg:3: unterminated string'],
    ['name = "x"\ndisk = [ "phy:/a,xvda,w"\n', "x.cfg:2: unterminated list: missing ']'"],
    ['name = "x"\ntype = hvm\n', 'x.cfg:2: "hvm" is not a value; put text in quotes'],
    ['name = "x"\nmemory = "lots"\n', "x.cfg:2: 'memory' must be a number"],
    ['name = "x"\nmemory = 512\nmaxmem = 256\n', "x.cfg:3: 'maxmem' (256 MiB) must not be below 'memory' (512 MiB)"],
    ['name = "x"\ndisk = [ "phy:/a,xvda,w",\n  "phy:/b,xvdb,q" ]\n', 'x.cfg:3: access must be r, ro, w or rw'],
    ['name = "x"\nvif = [ "mac=zz,bridge=xenbr0" ]\n', 'x.cfg:2: invalid MAC address "zz"'],
    ['name = "x"\npci = [ "nope" ]\n', 'x.cfg:2: invalid PCI address "nope"'],
    ['memory = 512\n', "x.cfg:1: missing 'name'"],
    ['name = "x"\nuuid = "abc"\n', "x.cfg:2: 'uuid' must be a UUID"],
    ['name = "x"\ntype = "pv"\n', "x.cfg:2: a PV guest needs 'kernel'"],
    ['name = "x"\n@\n', "x.cfg:2: unexpected character '@'"],
    ['name = "x"\ndisk = [ "phy:/a,xvda,w", "phy:/b,xvda,w" ]\n', 'x.cfg:2: disk xvda is listed twice'],
  ])('reports a malformed file with its line: %j', (text, message) => {
    const e = errorOf(() => parseConfig(text, 'x.cfg', 'xl'));
    expect(e.code).toBe(2);
    expect(e.message).toContain(message);
  });

  it('XlConfigError carries file and line', () => {
    try {
      parseXlConfig('a = 1\nb = ]\n', 'f');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(XlConfigError);
      expect((e as XlConfigError).line).toBe(2);
    }
  });
});

describe('JSON and YAML documents', () => {
  const vm = { id: UUID, name: 'doc', ty: ['PV', { boot: ['Direct', { kernel: '/k' }] }], memory_static_max: 268435456, memory_dynamic_max: 268435456, memory_dynamic_min: 268435456, vcpu_max: 1, vcpus: 1 };

  it('accepts a bare Vm.t in JSON, filling the obvious defaults', () => {
    const doc = parseConfig(JSON.stringify(vm), 'vm.json');
    expect(doc.vm).toMatchObject({ id: UUID, name: 'doc', ssidref: 0, on_reboot: ['Start'], pci_msitranslate: true });
  });

  it('accepts {vm, vbds, vifs} in YAML, re-keying device ids and accepting xl spec strings', () => {
    const yaml = `vm:\n  id: ${UUID}\n  name: y\n  ty: [PV, {boot: [Direct, {kernel: /k}]}]\n  memory_static_max: 268435456\n  memory_dynamic_max: 268435456\n  memory_dynamic_min: 268435456\n  vcpus: 1\nvbds:\n  - {id: [other, xvda], backend: [Local, /dev/a]}\n  - "file:/x.iso,hdc:cdrom,r"\nvifs:\n  - {id: "0", mac: "00:16:3e:00:00:02"}\n`;
    const doc = parseConfig(yaml, 'vm.yaml');
    expect(doc.vbds.map((d) => d.id)).toEqual([[UUID, 'xvda'], [UUID, 'hdc']]);
    expect(doc.vifs[0]).toMatchObject({ id: [UUID, '0'], mac: '00:16:3e:00:00:02' });
  });

  it('names the problem of an invalid document', () => {
    expect(errorOf(() => parseConfig(JSON.stringify({ ...vm, vcpus: 'many' }), 'vm.json')).message).toContain('vm.json: invalid Vm.t: Type error at vm.vcpus');
    expect(errorOf(() => parseConfig('{"id": 1,\n "name": @}', 'bad.json')).message).toMatch(/^bad\.json:2: invalid JSON/);
    expect(errorOf(() => parseConfig('vm:\n  name: [x\n', 'bad.yaml')).message).toMatch(/^bad\.yaml:\d+: invalid YAML/);
    const { memory_static_max: _, ...noMem } = vm;
    expect(errorOf(() => parseConfig(JSON.stringify(noMem), 'vm.json')).message).toContain("No value found for key 'memory_static_max'");
  });
});

describe('device specs', () => {
  it('maps device names to positions', () => {
    expect(positionOfVdev('xvda')).toEqual(['Xen', 0, 0]);
    expect(positionOfVdev('xvdb3')).toEqual(['Xen', 1, 3]);
    expect(positionOfVdev('xvdaa')).toEqual(['Xen', 26, 0]);
    expect(positionOfVdev('hdd')).toEqual(['Ide', 3, 0]);
    expect(positionOfVdev('sdb')).toEqual(['Scsi', 1, 0]);
    expect(positionOfVdev('d5p2')).toEqual(['Xen', 5, 2]);
    expect(positionOfVdev('weird')).toBeUndefined();
  });

  it('parses key=value disk specs, empty CD drives and VDI targets', () => {
    expect(parseDiskSpec('format=raw, vdev=xvdb, access=rw, target=/dev/vg/d2', 'v')).toEqual({
      id: ['v', 'xvdb'], mode: 'ReadWrite', ty: 'Disk', position: ['Xen', 1, 0], backend: ['Local', '/dev/vg/d2'],
    });
    expect(parseDiskSpec(',hdc:cdrom,r', 'v')).toEqual({ id: ['v', 'hdc'], mode: 'ReadOnly', ty: 'CDROM', position: ['Ide', 2, 0] });
    expect(parseDiskSpec('vdi:sr1/vdi9,xvda,w', 'v').backend).toEqual(['VDI', 'sr1/vdi9']);
    expect(parseDiskSpec('/dev/sdb,raw,xvdc,ro', 'v')).toMatchObject({ mode: 'ReadOnly', backend: ['Local', '/dev/sdb'] });
    expect(() => parseDiskSpec(',xvda,w', 'v')).toThrow(/only a cdrom drive may be empty/);
  });

  it('parses vif and pci specs', () => {
    expect(parseVifSpec('bridge=br0,rate=10Mb/s,ip=10.0.0.2', 'v', 3)).toMatchObject({
      id: ['v', '3'], position: 3, mac: '', backend: ['Local', 'br0'], rate: [1250, 50000], locking_mode: ['Locked', { ipv4: ['10.0.0.2'], ipv6: [] }],
    });
    expect(parsePciSpec('0001:02:03.4', 'v', 0).address).toEqual({ domain: 1, bus: 2, dev: 3, fn: 4 });
  });
});
