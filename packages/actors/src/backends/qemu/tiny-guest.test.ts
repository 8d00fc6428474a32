import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GUEST_MAC, guestImage, processesMentioning, requireQemu, tinyGuestArgs, type GuestImage } from '../../testing/tiny-guest.js';
import { QemuProcess } from './qemu-process.js';
import { SerialTimeoutError } from './errors.js';
import { SerialConsole } from './serial-console.js';
import type { QmpEvent } from './types.js';

// The tiny guest of `npm run guest-image` on real QEMU under TCG: one full boot (plus one guest
// reboot), then restores of its suspend image for the tests that end the guest. Each step is
// checked on both sides: what QMP reports and what the guest says on its serial console.
// Without QEMU or the image every test fails with the reason; none is skipped.

const BOOT_MS = 90_000; // a TCG boot takes ~4 s alone; leave room for a loaded 2-core machine
const MEMORY_MIB = 128;
let image: GuestImage;
let root: string;
const processes: QemuProcess[] = [];
const consoles: SerialConsole[] = [];
const timings: Record<string, number> = {};

let vm: QemuProcess;
let con: SerialConsole;
let diskPath: string;
let suspendImage: string;
/** The disk hot-plugged into the first VM: a restore must be given it on its command line. */
const restoreDisk = () => ['-blockdev', `driver=raw,node-name=d1,file.driver=file,file.filename=${diskPath}`, '-device', 'virtio-blk-pci,id=vbd1,drive=d1,bus=rp1'];

/** Why these tests cannot run here (no QEMU, no image): every test then fails with it. */
let missing: Error | undefined;
beforeEach(() => {
  if (missing) throw missing;
});

beforeAll(() => {
  try {
    requireQemu();
    image = guestImage();
  } catch (err) {
    missing = err as Error;
  }
  root = mkdtempSync(join(tmpdir(), 'xq-guest-'));
  diskPath = join(root, 'disk1.raw');
  suspendImage = join(root, 'suspend.img');
});

afterAll(async () => {
  await Promise.all(consoles.map((c) => c.close()));
  await Promise.all(processes.map((p) => p.stop().catch(() => undefined)));
  expect(processesMentioning(root)).toEqual([]);
  rmSync(root, { recursive: true, force: true });
  console.log(`QEMU timings (TCG, ${MEMORY_MIB} MiB guest), ms: ${JSON.stringify(timings, (_, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`);
});

async function start(name: string, extra: string[] = []): Promise<{ p: QemuProcess; c: SerialConsole }> {
  const p = await QemuProcess.start({ dir: join(root, name), args: tinyGuestArgs(image, { memoryMiB: MEMORY_MIB, extra }), startTimeoutMs: 30_000 });
  processes.push(p);
  const c = await SerialConsole.connect(p.paths.serial);
  consoles.push(c);
  return { p, c };
}

const heartbeatOf = (line: string) => Number(/heartbeat (\d+)$/.exec(line)?.[1]);

/** The last heartbeat the guest printed so far (consuming the console up to it), or `fallback`. */
async function lastHeartbeat(c: SerialConsole, fallback: number): Promise<number> {
  let last = fallback;
  for (;;) {
    try {
      last = heartbeatOf(await c.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 300 }));
    } catch (err) {
      if (err instanceof SerialTimeoutError) return last;
      throw err;
    }
  }
}

/** Asks the guest, returns the lines of its answer (between the command and "<cmd> done"). */
async function ask(c: SerialConsole, command: 'lsblk' | 'lsnet'): Promise<string[]> {
  c.skipPending();
  await c.send(command);
  const kind = command === 'lsblk' ? 'blk' : 'net';
  const lines: string[] = [];
  for (;;) {
    const line = await c.waitForLine(new RegExp(`^xenops-guest (${kind} .*|${command} done)$`), { timeoutMs: 20_000 });
    if (line.endsWith(`${command} done`)) return lines;
    lines.push(line);
  }
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const finished = (e: QmpEvent) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status));
const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

async function enableMigrationEvents(p: QemuProcess) {
  // QEMU reports MIGRATION events only with this capability on (both ends).
  await p.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
}

/** Starts a new process that loads the suspend image; resolves once it is loaded (paused). */
async function restore(name: string, extra: string[] = []) {
  const t0 = performance.now();
  const { p, c } = await start(name, [...restoreDisk(), ...extra, '-incoming', 'defer']);
  expect((await p.qmp.execute('query-status')).status).toBe('inmigrate');
  await enableMigrationEvents(p);
  const loaded = p.qmp.waitForEvent('MIGRATION', { predicate: finished, timeoutMs: 60_000 });
  await p.qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(suspendImage)}` });
  expect((await loaded).data?.status).toBe('completed');
  expect((await p.qmp.execute('query-status')).status).toBe('paused');
  return { p, c, loadMs: performance.now() - t0 };
}

describe('the tiny guest on QEMU (TCG)', () => {
  it('boots to the ready line and beats every second', { timeout: BOOT_MS + 30_000 }, async () => {
    const t0 = performance.now();
    ({ p: vm, c: con } = await start('vm'));
    timings.spawnToQmp = vm.startupMs ?? NaN;
    expect((await vm.qmp.execute('query-status')).status).toBe('prelaunch');
    const resumed = vm.qmp.waitForEvent('RESUME');
    const tCont = performance.now();
    await vm.qmp.execute('cont');
    await resumed;
    await con.waitForLine(/^xenops-guest ready$/, { timeoutMs: BOOT_MS });
    timings.contToReady = performance.now() - tCont;
    timings.spawnToReady = performance.now() - t0;
    // Every module of the initramfs loaded (init says so otherwise).
    expect(con.recentLines(1_000).filter((l) => l.startsWith('xenops-guest warning'))).toEqual([]);
    const beats = [];
    for (let i = 0; i < 3; i++) beats.push(heartbeatOf(await con.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 10_000 })));
    expect(beats).toEqual([1, 2, 3]);
    expect((await vm.qmp.execute('query-status')).status).toBe('running');
  });

  it('answers QMP round trips', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      expect((await vm.qmp.execute('query-status')).running).toBe(true);
      samples.push(performance.now() - t);
    }
    samples.sort((a, b) => a - b);
    timings.qmpRoundTripP50 = samples[50] as number;
    timings.qmpRoundTripP99 = samples[99] as number;
  });

  it('stop pauses the guest (no heartbeat) and cont resumes it where it was', { timeout: 30_000 }, async () => {
    const before = heartbeatOf(await con.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 10_000 }));
    const stopped = vm.qmp.waitForEvent('STOP');
    await vm.qmp.execute('stop');
    await stopped;
    expect(await vm.qmp.execute('query-status')).toMatchObject({ status: 'paused', running: false });
    // The serial socket is not ordered with the QMP socket: lines sent before the stop may still arrive.
    const frozen = await lastHeartbeat(con, before);
    await expect(con.waitForLine(/heartbeat/, { timeoutMs: 2_500 })).rejects.toBeInstanceOf(SerialTimeoutError);
    const resumed = vm.qmp.waitForEvent('RESUME');
    await vm.qmp.execute('cont');
    await resumed;
    const after = heartbeatOf(await con.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 10_000 }));
    // The counter goes on from where it stopped (the line being written at the stop may come whole or not at all).
    expect(after).toBeGreaterThan(frozen);
    expect(after).toBeLessThanOrEqual(frozen + 2);
  });

  it('lsnet shows the NIC with its MAC, and its carrier follows set_link', { timeout: 60_000 }, async () => {
    expect(await ask(con, 'lsnet')).toEqual([`xenops-guest net eth0 ${GUEST_MAC} up`]);
    await vm.qmp.execute('set_link', { name: 'nic0', up: false });
    await until(async () => ((await ask(con, 'lsnet'))[0]?.endsWith(' down') ? true : undefined), 10_000);
    await vm.qmp.execute('set_link', { name: 'nic0', up: true });
    await until(async () => ((await ask(con, 'lsnet'))[0]?.endsWith(' up') ? true : undefined), 10_000);
    con.skipPending();
    await con.send('frobnicate');
    await expect(con.waitForLine(/unknown command: frobnicate/, { timeoutMs: 10_000 })).resolves.toContain('lsblk, lsnet');
  });

  it('a disk hot-plugged into a PCIe root port shows up in lsblk; one unplugged goes away', { timeout: 90_000 }, async () => {
    expect(await ask(con, 'lsblk')).toEqual([]);
    execFileSync('truncate', ['-s', '8M', diskPath]);
    execFileSync('truncate', ['-s', '4M', join(root, 'disk2.raw')]);
    await vm.qmp.execute('blockdev-add', { 'node-name': 'd1', driver: 'raw', file: { driver: 'file', filename: diskPath } });
    let t = performance.now();
    await vm.qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'vbd1', drive: 'd1', bus: 'rp1' });
    await until(async () => ((await ask(con, 'lsblk')).includes('xenops-guest blk vda 8388608') ? true : undefined), 30_000);
    timings.hotplugToLsblk = performance.now() - t;

    await vm.qmp.execute('blockdev-add', { 'node-name': 'd2', driver: 'raw', file: { driver: 'file', filename: join(root, 'disk2.raw') } });
    await vm.qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'vbd2', drive: 'd2', bus: 'rp2' });
    await until(async () => ((await ask(con, 'lsblk')).includes('xenops-guest blk vdb 4194304') ? true : undefined), 30_000);
    const deleted = vm.qmp.waitForEvent('DEVICE_DELETED', { predicate: (e) => e.data?.device === 'vbd2', timeoutMs: 30_000 });
    t = performance.now();
    await vm.qmp.execute('device_del', { id: 'vbd2' });
    await deleted; // the guest released it
    timings.unplugToDeviceDeleted = performance.now() - t;
    await vm.qmp.execute('blockdev-del', { 'node-name': 'd2' });
    expect(await ask(con, 'lsblk')).toEqual(['xenops-guest blk vda 8388608']);
  });

  it('the balloon driver follows a new target (BALLOON_CHANGE)', { timeout: 60_000 }, async () => {
    expect((await vm.qmp.execute('query-balloon')).actual).toBe(MEMORY_MIB * 2 ** 20);
    const target = 96 * 2 ** 20;
    const reached = vm.qmp.waitForEvent('BALLOON_CHANGE', { predicate: (e) => e.data?.actual === target, timeoutMs: 45_000 });
    await vm.qmp.execute('balloon', { value: target });
    await reached;
    expect((await vm.qmp.execute('query-balloon')).actual).toBe(target);
  });

  it('reboot typed on the console resets the machine (RESET) and the guest boots again', { timeout: BOOT_MS + 30_000 }, async () => {
    con.skipPending();
    const reset = vm.qmp.waitForEvent('RESET');
    await con.send('reboot');
    // The kernel tries several reset methods in a row: expect one RESET or more, all guest-initiated.
    expect((await reset).data).toMatchObject({ guest: true, reason: 'guest-reset' });
    await con.waitForLine(/^xenops-guest ready$/, { timeoutMs: BOOT_MS });
    expect(heartbeatOf(await con.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 10_000 }))).toBe(1);
    // Hot-plugged devices survive a reset.
    expect(await ask(con, 'lsblk')).toEqual(['xenops-guest blk vda 8388608']);
  });

  it('suspends to a file (migrate to exec:) and resumes in a new process: the heartbeat counter goes on', { timeout: 120_000 }, async () => {
    const last = heartbeatOf(await con.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 10_000 }));
    await enableMigrationEvents(vm);
    // The default limit (128 MiB/s) would make this several times slower.
    await vm.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 2 ** 30 });
    const t0 = performance.now();
    await vm.qmp.execute('stop');
    const saved = vm.qmp.waitForEvent('MIGRATION', { predicate: finished, timeoutMs: 60_000 });
    await vm.qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(suspendImage)}` });
    expect((await saved).data?.status).toBe('completed');
    timings.suspend = performance.now() - t0;
    timings.suspendImageBytes = statSync(suspendImage).size;
    const info = await vm.qmp.execute('query-migrate');
    expect(info.status).toBe('completed');
    // QEMU passes through finish-migrate on its way to postmigrate: a loaded machine can show it.
    await expect.poll(async () => ((await vm.qmp.execute('query-status')) as { status: string }).status, { timeout: 10_000 }).toBe('postmigrate');
    const beforeStop = await lastHeartbeat(con, last);
    expect((await vm.stop()).stoppedBy).toBe('quit');

    const r = await restore('resumed');
    timings.resumeLoad = r.loadMs;
    const tCont = performance.now();
    await r.p.qmp.execute('cont');
    const next = heartbeatOf(await r.c.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 20_000 }));
    timings.resumeToHeartbeat = performance.now() - tCont;
    expect(next).toBeGreaterThan(beforeStop);
    expect(next).toBeLessThanOrEqual(beforeStop + 2);
    expect(await ask(r.c, 'lsblk')).toEqual(['xenops-guest blk vda 8388608']);
    expect(await ask(r.c, 'lsnet')).toEqual([`xenops-guest net eth0 ${GUEST_MAC} up`]);
    vm = r.p;
    con = r.c;
  });

  it('system_powerdown presses the ACPI button: the guest powers off (SHUTDOWN) and QEMU exits', { timeout: 30_000 }, async () => {
    const shutdown = vm.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 20_000 });
    const t0 = performance.now();
    await vm.qmp.execute('system_powerdown');
    expect((await shutdown).data).toEqual({ guest: true, reason: 'guest-shutdown' });
    expect(await vm.exited()).toEqual({ code: 0, signal: null });
    timings.powerdownToExit = performance.now() - t0;
    expect(con.recentLines(5)).toContain('xenops-guest powering off (ACPI power button)');
    expect(processesMentioning(vm.paths.dir)).toEqual([]);
  });

  it('panic typed on the console is reported by pvpanic (GUEST_PANICKED) and the domain is kept paused', { timeout: 90_000 }, async () => {
    const { p, c } = await restore('panicked', ['-action', 'panic=pause']);
    await p.qmp.execute('cont');
    await c.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 20_000 });
    const panicked = p.qmp.waitForEvent('GUEST_PANICKED', { timeoutMs: 30_000 });
    await c.send('panic');
    expect((await panicked).data).toMatchObject({ action: 'pause' });
    expect((await p.qmp.execute('query-status')).status).toBe('guest-panicked');
    expect((await p.stop()).stoppedBy).toBe('quit');
  });

  it('poweroff typed on the console ends QEMU with a guest SHUTDOWN', { timeout: 90_000 }, async () => {
    const { p, c } = await restore('poweroff');
    await p.qmp.execute('cont');
    await c.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 20_000 });
    const shutdown = p.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 30_000 });
    await c.send('poweroff');
    expect((await shutdown).data).toEqual({ guest: true, reason: 'guest-shutdown' });
    expect((await p.exited()).code).toBe(0);
  });

  it('with -action reboot=shutdown a guest reboot ends QEMU with one SHUTDOWN (guest-reset) instead of resets', { timeout: 90_000 }, async () => {
    const { p, c } = await restore('reboot-exits', ['-action', 'reboot=shutdown']);
    const resets: QmpEvent[] = [];
    p.qmp.on('event', (e) => e.event === 'RESET' && resets.push(e));
    await p.qmp.execute('cont');
    await c.waitForLine(/^xenops-guest heartbeat \d+$/, { timeoutMs: 20_000 });
    const shutdown = p.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 30_000 });
    await c.send('reboot');
    expect((await shutdown).data).toEqual({ guest: true, reason: 'guest-reset' });
    expect((await p.exited()).code).toBe(0);
    expect(resets).toEqual([]);
  });

  it('a corrupt suspend image fails the load (MIGRATION failed) and QEMU 7.2 exits with its reason on stderr', { timeout: 60_000 }, async () => {
    const corrupt = join(root, 'corrupt.img');
    writeFileSync(corrupt, Buffer.alloc(64 * 1024, 0x5a));
    const { p } = await start('corrupt', [...restoreDisk(), '-incoming', 'defer']);
    await enableMigrationEvents(p);
    const failed = p.qmp.waitForEvent('MIGRATION', { predicate: finished, timeoutMs: 30_000 });
    await p.qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(corrupt)}` });
    expect((await failed).data?.status).toBe('failed');
    expect(await p.exited()).toEqual({ code: 1, signal: null });
    expect(p.lastStderrLine()).toMatch(/^qemu-system-x86_64: load of migration failed/);
  });
});

