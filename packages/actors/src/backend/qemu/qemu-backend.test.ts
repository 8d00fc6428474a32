/**
 * The QEMU backend against real QEMU processes (TCG, the tiny guest of `npm run guest-image`):
 * the backend contract suite, the typed errors of API.md §8.4 each with a test, suspend images
 * refused when missing, foreign, another VM's or corrupt, and a restart that re-attaches running
 * domains and stops QEMU processes no VM owns. Tests run one after another (two cores, shared).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { VbdT, VmT, XenopsError, type DomainRecord, type Effect, type VmConfig } from '@xenops/core';
import { afterEach, describe, expect, it } from 'vitest';
import { guestImage, SerialConsole } from '../../backends/qemu/index.js';
import type { Backend, BackendHost, EffectContext, VmView } from '../backend.js';
import { describeBackendContract } from '../contract.suite.js';
import { qemuRoot } from './domain-files.js';
import { qemuProcessesUnder } from './orphans.js';
import { QemuBackend } from './qemu-backend.js';
import { encodeHeader } from './suspend-image.js';
import { tinyGuestVm } from '../../testing/tiny-guest.js';

const MIB = 1048576;
const ctx: EffectContext = { signal: new AbortController().signal, cancelPoint: () => {}, markNonCancellable: () => {} };

function tinyConfig(id: string, overrides: Record<string, unknown> = {}): VmConfig {
  return VmT.decode(tinyGuestVm(id, overrides), 'vm');
}

/** Kills every QEMU a test left under `dataDir` (domains outlive a backend's close on purpose). */
async function killQemu(dataDir: string): Promise<void> {
  const procs = qemuProcessesUnder(qemuRoot(dataDir));
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 5_000;
  while (qemuProcessesUnder(qemuRoot(dataDir)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

const serialPath = (vm: VmView) => vm.domain?.consoles.find((c) => c.protocol === 'Vt100')?.path ?? '';

/** Waits for a line in the domain's serial.log written after byte `from`. */
async function waitForSerialLog(dir: string, re: RegExp, from: number, timeoutMs = 90_000): Promise<void> {
  const log = join(dir, 'serial.log');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(log) && re.test(readFileSync(log).subarray(from).toString('utf8'))) return;
    if (Date.now() > deadline) throw new Error(`no ${re} in ${log} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const logSize = (dir: string) => (existsSync(join(dir, 'serial.log')) ? statSync(join(dir, 'serial.log')).size : 0);
/** Where the domain's current boot began in serial.log (each VM_create is a new boot). */
const bootStart = new Map<string, number>();

describeBackendContract('qemu', {
  create: () => new QemuBackend({ network: 'user' }),
  vmConfig: (id) => tinyConfig(id, { memory_static_max: 256 * MIB, memory_dynamic_max: 256 * MIB }),
  timeoutMs: 180_000,
  unimplemented: ['VM_run_script'],
  cleanUp: killQemu,
  waitForGuest: async (_backend, vm) => waitForSerialLog(dirname(serialPath(vm)), /xenops-guest ready/, 0),
  // The guest's own acts, typed on its console. A reboot or power-off ends the process (QEMU runs
  // with -action reboot=shutdown), so the next act first gets a new domain for the guest.
  causeGuestAction: async (backend: Backend, vm: VmView, action) => {
    const dir = dirname(serialPath(vm));
    let from = 0;
    if (bootStart.has(dir)) {
      // The guest acted before: its process ended (power-off, reboot) or it is panicked. A new domain.
      await backend.perform({ kind: 'VM_destroy', vmId: vm.id }, ctx);
      from = logSize(dir);
      for (const e of [
        { kind: 'VM_create', vmId: vm.id, config: vm.config! },
        { kind: 'VM_build', vmId: vm.id, force: false },
        { kind: 'VM_create_device_model', vmId: vm.id, saveState: false },
        { kind: 'VM_unpause', vmId: vm.id },
      ] as Effect[])
        await backend.perform(e, ctx);
    }
    bootStart.set(dir, from);
    await waitForSerialLog(dir, /xenops-guest ready/, from);
    // Typed until the guest says it acts (under load a line can be typed before the guest reads).
    const console = await SerialConsole.connect(join(dir, 'serial.sock'));
    try {
      for (let attempt = 1; ; attempt++) {
        await console.send({ reboot: 'reboot', halt: 'poweroff', crash: 'panic' }[action]);
        try {
          await console.waitForLine(/xenops-guest (rebooting|powering off|panicking)/, { timeoutMs: 15_000 });
          break;
        } catch (e) {
          if (attempt === 3) throw e;
        }
      }
    } finally {
      await console.close();
    }
  },
});

describe('QEMU backend: the typed errors of API.md §8.4, suspend images, restart', () => {
  const dirs: string[] = [];
  const backends: QemuBackend[] = [];
  afterEach(async () => {
    await Promise.all(backends.splice(0).map((b) => b.close()));
    for (const d of dirs) await killQemu(d);
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  const dataDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'xq-'));
    dirs.push(d);
    return d;
  };
  const start = async (opts: ConstructorParameters<typeof QemuBackend>[0] = {}, host: Partial<BackendHost> = {}) => {
    const b = new QemuBackend({ network: 'user', ...opts });
    backends.push(b);
    const lines: string[] = [];
    await b.start({ hostId: 'h', dataDir: host.dataDir ?? (await dataDir()), logger: (l) => lines.push(l), now: Date.now, lastDomid: 0, knownDomains: [], ...host });
    return { b, lines };
  };
  const errorOf = async (p: Promise<unknown>): Promise<unknown> => {
    try {
      await p;
    } catch (e) {
      if (e instanceof XenopsError) return e.value;
      throw e;
    }
    throw new Error('expected a failure');
  };
  const create = (b: Backend, vmId: string, config = tinyConfig(vmId)) => b.perform({ kind: 'VM_create', vmId, config }, ctx);
  const vbd = (vm: string, dev: string, fields: Record<string, unknown>) => VbdT.decode({ id: [vm, dev], ...fields }, 'vbd');
  const record: DomainRecord = { hvm: false, domainType: 'Domain_PVH', vcpus: 1, memoryTarget: 160 * MIB, memoryLimit: 160 * MIB, shadowMultiplier: 1, rtcTimeoffset: '', xsdata: [] };

  it('HOST.stat from this machine: its CPUs, memory and the QEMU version', async () => {
    const { b } = await start();
    const facts = await b.hostFacts();
    expect(facts.host.cpu_info.cpu_count).toBe(cpus().length);
    expect(facts.host.cpu_info.modelname).toBe(cpus()[0]!.model.trim());
    expect(facts.host.hypervisor).toEqual({ version: expect.stringMatching(/^qemu \d+\.\d+/), capabilities: 'tcg' });
    expect(facts.host.chipset_info.hvm).toBe(true);
    expect(facts.totalMemoryMib).toBe(Math.floor(totalmem() / MIB));
  });

  it('HVM boots through the firmware from its disk: a boot sector that writes to the serial port', async () => {
    const dir = await dataDir();
    const { b } = await start({}, { dataDir: dir });
    // Real-mode code at 0:7c00: ds = 0, print the message to COM1 (0x3f8) byte by byte, halt.
    const code = [0x31, 0xc0, 0x8e, 0xd8, 0xfc, 0xba, 0xf8, 0x03, 0xbe, 0x17, 0x7c, 0xac, 0x08, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd, 0x90];
    const sector = Buffer.alloc(512);
    Buffer.from(code).copy(sector, 0);
    Buffer.from('xenops-hvm boot sector ran\r\n\0', 'latin1').copy(sector, code.length);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    const disk = join(dir, 'boot.img');
    writeFileSync(disk, Buffer.concat([sector, Buffer.alloc(MIB - 512)]));
    await create(b, 'hvm', tinyConfig('hvm', { ty: ['HVM', {}] }));
    await b.perform({ kind: 'VM_build', vmId: 'hvm', force: false }, ctx);
    await b.perform({ kind: 'VBD_plug', vmId: 'hvm', vbd: vbd('hvm', 'xvda', { backend: ['Local', disk] }), diskNumber: 0 }, ctx);
    await b.perform({ kind: 'VM_create_device_model', vmId: 'hvm', saveState: false }, ctx);
    await b.perform({ kind: 'VM_unpause', vmId: 'hvm' }, ctx);
    await waitForSerialLog(join(dir, 'qemu', 'hvm'), /xenops-hvm boot sector ran/, 0, 60_000);
    await b.perform({ kind: 'VM_destroy', vmId: 'hvm' }, ctx);
  }, 90_000);

  it('Failed_to_start_emulator carries QEMU\u2019s last error line; nothing is left running', async () => {
    const dir = await dataDir();
    const notAKernel = join(dir, 'not-a-kernel');
    writeFileSync(notAKernel, 'hello');
    const { b } = await start({}, { dataDir: dir });
    const config = tinyConfig('bad', { ty: ['PVH', { boot: ['Direct', { kernel: notAKernel, cmdline: '' }] }] });
    const e = await errorOf(create(b, 'bad', config));
    expect(e).toEqual(['Failed_to_start_emulator', ['bad', 'qemu', 'qemu: invalid kernel header']]);
    const { b: missing } = await start({ binary: join(dir, 'no-such-qemu') });
    expect(await errorOf(create(missing, 'm'))).toEqual(['Failed_to_start_emulator', ['m', 'qemu', expect.stringContaining('ENOENT')]]);
    expect(qemuProcessesUnder(qemuRoot(dir))).toEqual([]);
    expect(await b.domains()).toEqual([]);
  });

  it('Bootloader_error for Indirect boot, No_bootable_device without a kernel or (HVM) without a disk, Not_enough_memory beyond the host\u2019s', async () => {
    const { b } = await start();
    const indirect = tinyConfig('i', { ty: ['PV', { boot: ['Indirect', { bootloader: 'pygrub' }] }] });
    expect(await errorOf(create(b, 'i', indirect))).toEqual(['Bootloader_error', ['pygrub', 'not supported by the QEMU backend']]);
    const noKernel = tinyConfig('k', { ty: ['PV', { boot: ['Direct', { kernel: '', cmdline: '' }] }] });
    expect(await errorOf(create(b, 'k', noKernel))).toBe('No_bootable_device');
    const huge = tinyConfig('big', { memory_static_max: 2 ** 50, memory_dynamic_max: 2 ** 50 });
    expect(await errorOf(create(b, 'big', huge))).toEqual(['Not_enough_memory', 2 ** 50]);
    const hvm = tinyConfig('h', { ty: ['HVM', {}] });
    await create(b, 'h', hvm);
    await b.perform({ kind: 'VM_build', vmId: 'h', force: false }, ctx);
    expect(await errorOf(b.perform({ kind: 'VM_create_device_model', vmId: 'h', saveState: false }, ctx))).toBe('No_bootable_device');
    expect(await b.domains()).toEqual([{ vmId: 'h', domid: 1, paused: true }]);
  });

  it('Storage_backend_error for a missing disk, kernel or VDI; PCIBack_not_loaded for a device not bound to vfio-pci', async () => {
    const dir = await dataDir();
    const { b } = await start({ srDir: join(dir, 'sr') }, { dataDir: dir });
    const missingKernel = tinyConfig('mk', { ty: ['PVH', { boot: ['Direct', { kernel: join(dir, 'nope'), cmdline: '' }] }] });
    expect(await errorOf(create(b, 'mk', missingKernel))).toEqual(['Storage_backend_error', ['ENOENT', [join(dir, 'nope'), expect.any(String)]]]);
    await create(b, 'v');
    const missing = join(dir, 'missing.img');
    expect(await errorOf(b.perform({ kind: 'VBD_plug', vmId: 'v', vbd: vbd('v', 'xvda', { backend: ['Local', missing] }), diskNumber: 0 }, ctx))).toEqual([
      'Storage_backend_error',
      ['ENOENT', [missing, `${missing} does not exist`]],
    ]);
    expect(await errorOf(b.perform({ kind: 'VBD_plug', vmId: 'v', vbd: vbd('v', 'xvdb', { backend: ['VDI', 'gone.qcow2'] }), diskNumber: 1 }, ctx))).toEqual([
      'Storage_backend_error',
      ['ENOENT', [join(dir, 'sr', 'gone.qcow2'), expect.any(String)]],
    ]);
    expect(await errorOf(b.perform({ kind: 'VBD_plug', vmId: 'v', vbd: vbd('v', 'xvdc', { backend: ['VDI', '../escape'] }), diskNumber: 2 }, ctx))).toEqual([
      'Storage_backend_error',
      ['VDI_INVALID', ['../escape', expect.any(String)]],
    ]);
    const pci = { id: ['v', 'gpu'] as [string, string], position: 0, address: { domain: 0, bus: 0xff, dev: 0x1f, fn: 7 } };
    expect(await errorOf(b.perform({ kind: 'PCI_plug', vmId: 'v', pci }, ctx))).toBe('PCIBack_not_loaded');
    const { b: noSr } = await start();
    await create(noSr, 'w');
    expect(await errorOf(noSr.perform({ kind: 'VBD_plug', vmId: 'w', vbd: vbd('w', 'xvda', { backend: ['VDI', 'x'] }), diskNumber: 0 }, ctx))).toEqual([
      'Storage_backend_error',
      ['SR_NOT_CONFIGURED', ['x', expect.any(String)]],
    ]);
  });

  it('raw and qcow2 disks plug; Device_detach_rejected when the guest cannot release one; Media_not_present / Media_present on a CD drive', async () => {
    const dir = await dataDir();
    const { b } = await start({}, { dataDir: dir });
    // A dynamic maximum below the static one: the build sets the balloon (before the guest runs).
    await create(b, 'd', tinyConfig('d', { memory_dynamic_max: 128 * MIB }));
    await b.perform({ kind: 'VM_build', vmId: 'd', force: false }, ctx);
    const raw = join(dir, 'raw.img');
    writeFileSync(raw, Buffer.alloc(MIB));
    const qcow2 = join(dir, 'disk.qcow2');
    // A minimal qcow2 v2 header of a 1 MiB image (magic, version, cluster bits 16, size, L1 at 0x30000 ...) is
    // what qemu-img writes; here QEMU's own blockdev-create is not needed: the magic decides the driver.
    writeFileSync(qcow2, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), Buffer.alloc(508)]));
    await b.perform({ kind: 'VBD_plug', vmId: 'd', vbd: vbd('d', 'xvda', { backend: ['Local', raw] }), diskNumber: 0 }, ctx);
    // A broken qcow2 is refused by QEMU's qcow2 driver: proof the format was detected as qcow2.
    await expect(b.perform({ kind: 'VBD_plug', vmId: 'd', vbd: vbd('d', 'xvdb', { backend: ['Local', qcow2] }), diskNumber: 1 }, ctx)).rejects.toThrow(/qcow|Unsupported|image/i);
    // The guest has not run (prelaunch): it cannot release the disk.
    expect(await errorOf(b.perform({ kind: 'VBD_unplug', vmId: 'd', vbd: vbd('d', 'xvda', { backend: ['Local', raw] }), force: false }, ctx))).toEqual([
      'Device_detach_rejected',
      ['vbd', 'xvda', 'the domain is not running'],
    ]);
    await b.perform({ kind: 'VBD_unplug', vmId: 'd', vbd: vbd('d', 'xvda', { backend: ['Local', raw] }), force: true }, ctx);

    const iso = join(dir, 'cd.iso');
    writeFileSync(iso, Buffer.alloc(MIB));
    const cd = vbd('d', 'hdc', { ty: 'CDROM', mode: 'ReadOnly' });
    await b.perform({ kind: 'VBD_plug', vmId: 'd', vbd: cd, diskNumber: 2 }, ctx);
    expect(await errorOf(b.perform({ kind: 'VBD_eject', vmId: 'd', vbd: cd, plugged: true }, ctx))).toBe('Media_not_present');
    await b.perform({ kind: 'VBD_insert', vmId: 'd', vbd: cd, disk: ['Local', iso], plugged: true }, ctx);
    expect(await errorOf(b.perform({ kind: 'VBD_insert', vmId: 'd', vbd: cd, disk: ['Local', iso], plugged: true }, ctx))).toBe('Media_present');
    await b.perform({ kind: 'VBD_eject', vmId: 'd', vbd: cd, plugged: true }, ctx);
    expect(await errorOf(b.perform({ kind: 'VBD_eject', vmId: 'd', vbd: cd, plugged: true }, ctx))).toBe('Media_not_present');
  });

  it('VM_restore refuses a missing, foreign, another VM\u2019s and a corrupt image; the VM_shutdown_domain of a guest that never listens is no-ack', async () => {
    const dir = await dataDir();
    const { b } = await start({}, { dataDir: dir });
    await create(b, 'r');
    const restore = (path: string) => errorOf(b.perform({ kind: 'VM_restore', vmId: 'r', disk: ['Local', path] }, ctx));
    expect(await restore(join(dir, 'none'))).toEqual(['Internal_error', expect.stringContaining('does not exist')]);
    const foreign = join(dir, 'foreign');
    writeFileSync(foreign, JSON.stringify({ format: 'xenops-ts-suspend-image', version: 1, vm: 'r' }));
    expect(await restore(foreign)).toEqual(['Internal_error', expect.stringContaining('not a QEMU suspend image')]);
    const other = join(dir, 'other');
    writeFileSync(other, Buffer.concat([encodeHeader({ vm: 'someone-else', savedAt: '', record, devices: [] }), Buffer.from('QEVM')]));
    expect(await restore(other)).toEqual(['Internal_error', expect.stringContaining('belongs to VM someone-else')]);
    // Nothing was touched: the domain is still the paused one VM_create made.
    expect(await b.domains()).toEqual([{ vmId: 'r', domid: 1, paused: true }]);
    const corrupt = join(dir, 'corrupt');
    writeFileSync(corrupt, Buffer.concat([encodeHeader({ vm: 'r', savedAt: '', record, devices: [] }), Buffer.from('QEVM'), Buffer.alloc(4096, 7)]));
    expect(await restore(corrupt)).toEqual(['Internal_error', expect.stringContaining('is corrupt')]);
    expect(qemuProcessesUnder(qemuRoot(dir))).toEqual([]);

    // A guest that never runs never acts on the power button: no acknowledgement within the time.
    await create(b, 'n');
    const t0 = Date.now();
    expect(await b.perform({ kind: 'VM_shutdown_domain', vmId: 'n', reason: 'poweroff', ackTimeoutS: 1, shutdownTimeoutS: 1 }, ctx)).toEqual({ kind: 'shutdown', outcome: 'no-ack' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(await b.domains()).toEqual([{ vmId: 'n', domid: 2, paused: true }]);
  });

  it('a hung QEMU: the atom’s limit ends the wait, the teardown’s VM_destroy kills the process', async () => {
    const dir = await dataDir();
    const { b } = await start({}, { dataDir: dir });
    await create(b, 'hung');
    const [proc] = qemuProcessesUnder(qemuRoot(dir));
    process.kill(proc!.pid, 'SIGSTOP');
    const limit = AbortSignal.timeout(500);
    const t0 = Date.now();
    await expect(b.perform({ kind: 'VM_pause', vmId: 'hung' }, { ...ctx, signal: limit })).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(5_000);
    await b.perform({ kind: 'VM_destroy', vmId: 'hung' }, ctx);
    expect(qemuProcessesUnder(qemuRoot(dir))).toEqual([]);
    expect(await b.domains()).toEqual([]);
  });

  it('a restart re-attaches the domains the log knows (same domid, paused state), logs the ones that are gone and stops QEMU processes no VM owns', async () => {
    const dir = await dataDir();
    const first = await start({}, { dataDir: dir });
    await create(first.b, 'a');
    await create(first.b, 'b');
    await create(first.b, 'orphan');
    await first.b.perform({ kind: 'VM_unpause', vmId: 'a' }, ctx);
    const [pa, pb, po] = ['a', 'b', 'orphan'].map((vm) => qemuProcessesUnder(qemuRoot(dir)).find((p) => p.dir.endsWith(`/${vm}`))!.pid);
    await first.b.close();
    process.kill(pb!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const second = await start({}, {
      dataDir: dir,
      lastDomid: 3,
      knownDomains: [
        { vmId: 'a', domid: 1, paused: false, pluggedVbds: [] },
        { vmId: 'b', domid: 2, paused: true, pluggedVbds: [] },
      ],
    });
    expect(await second.b.domains()).toEqual([{ vmId: 'a', domid: 1, paused: false }]);
    expect(qemuProcessesUnder(qemuRoot(dir)).map((p) => p.pid)).toEqual([pa]);
    expect(second.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/vm a: domain 1: re-attached to QEMU process \d+ \(running\)/),
        expect.stringMatching(/vm b: domain 2: cannot re-attach .*the state check tears it down/),
        expect.stringMatching(new RegExp(`QEMU process ${po} .* belongs to no domain of this host: stopping it`)),
      ]),
    );
    // The re-attached domain obeys, and a new domain gets a higher domid.
    await second.b.perform({ kind: 'VM_pause', vmId: 'a' }, ctx);
    expect(await second.b.domains()).toEqual([{ vmId: 'a', domid: 1, paused: true }]);
    const created = await create(second.b, 'c');
    expect(created).toMatchObject({ kind: 'created', domid: 4 });
    await second.b.perform({ kind: 'VM_destroy', vmId: 'a' }, ctx);
    expect(qemuProcessesUnder(qemuRoot(dir)).some((p) => p.pid === pa)).toBe(false);
  });
});
