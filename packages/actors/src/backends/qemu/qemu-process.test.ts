import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { processesMentioning, requireQemu } from '../../testing/tiny-guest.js';
import { EmulatorStartError, QemuAttachError } from './errors.js';
import { baseArgs, QemuProcess, qemuPaths } from './qemu-process.js';

// Real qemu-system-x86_64 processes (no guest booted: a paused machine is enough to drive the
// process lifecycle). Nothing is skipped: without QEMU every test fails with the reason.
let root: string;
const started: QemuProcess[] = [];

let missing: Error | undefined;
beforeEach(() => {
  if (missing) throw missing;
});

beforeAll(() => {
  try {
    requireQemu();
  } catch (err) {
    missing = err as Error;
  }
  root = mkdtempSync(join(tmpdir(), 'xq-proc-'));
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop().catch(() => undefined)));
  // The point of the file: no QEMU of these tests survives them.
  expect(processesMentioning(root)).toEqual([]);
  rmSync(root, { recursive: true, force: true });
});

async function start(name: string, args: string[] = ['-m', '64'], extra: Partial<Parameters<typeof QemuProcess.start>[0]> = {}) {
  const p = await QemuProcess.start({ dir: join(root, name), args, startTimeoutMs: 20_000, ...extra });
  started.push(p);
  return p;
}

describe('QemuProcess', () => {
  it('starts paused on q35 under TCG with QMP ready, then quits cleanly and removes its sockets', async () => {
    const p = await start('paused');
    expect(p.startupMs).toBeGreaterThan(0);
    expect(await p.qmp.execute('query-status')).toMatchObject({ status: 'prelaunch', running: false });
    expect(p.qmp.greeting.QMP.version.qemu.major).toBeGreaterThanOrEqual(7);
    const machine = (await p.qmp.execute('query-machines', undefined)) as Array<{ name: string; alias?: string }>;
    expect(machine.length).toBeGreaterThan(0);
    expect(((await p.qmp.execute('query-target')) as { arch: string }).arch).toBe('x86_64');
    expect(Number(readFileSync(p.paths.pidFile, 'utf8'))).toBe(p.pid);
    expect(readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['-S', '-nodefaults', '-no-user-config', 'tcg', 'q35']));
    const shutdown = p.qmp.waitForEvent('SHUTDOWN');
    expect(await p.stop()).toEqual({ code: 0, signal: null, stoppedBy: 'quit' });
    expect((await shutdown).data).toMatchObject({ guest: false, reason: 'host-qmp-quit' });
    expect(p.hasExited).toBe(true);
    for (const f of [p.paths.qmp, p.paths.serial, p.paths.pidFile]) expect(existsSync(f)).toBe(false);
    expect(processesMentioning(p.paths.dir)).toEqual([]);
    // Stopping again reports that it had already exited.
    expect((await p.stop()).stoppedBy).toBe('already-exited');
  });

  it('fails with EmulatorStartError carrying the last stderr line when QEMU refuses its arguments, leaving no process', async () => {
    const dir = join(root, 'bad-args');
    const err = await QemuProcess.start({ dir, args: ['-device', 'no-such-device-model'] }).catch((e) => e);
    expect(err).toBeInstanceOf(EmulatorStartError);
    expect(err).toMatchObject({ name: 'EmulatorStartError', code: 'QEMU_START_FAILED', binary: 'qemu-system-x86_64' });
    expect(err.stderrLine).toMatch(/no-such-device-model/);
    expect(err.message).toContain(err.stderrLine);
    expect(processesMentioning(dir)).toEqual([]);
    // The next failure reports its own line, not the previous run's (stderr.log is appended to).
    const again = await QemuProcess.start({ dir, args: ['-m', 'lots'] }).catch((e) => e);
    expect(again.stderrLine).not.toMatch(/no-such-device-model/);
    expect(again.stderrLine).toMatch(/^qemu-system-x86_64: -m lots: /);
  });

  it('fails with EmulatorStartError when the binary does not exist', async () => {
    const err = await QemuProcess.start({ dir: join(root, 'no-binary'), args: [], binary: '/nonexistent/qemu' }).catch((e) => e);
    expect(err).toBeInstanceOf(EmulatorStartError);
    expect(err.message).toMatch(/ENOENT/);
  });

  it('refuses a socket path longer than a Unix socket allows', async () => {
    const err = await QemuProcess.start({ dir: join(root, 'x'.repeat(120)), args: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(EmulatorStartError);
    expect(err.message).toMatch(/socket path longer/);
  });

  it('refuses to start a second QEMU in a directory whose QEMU still runs', async () => {
    const p = await start('twice');
    const err = await QemuProcess.start({ dir: p.paths.dir, args: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(EmulatorStartError);
    expect(err.message).toMatch(/already runs/);
    expect(await p.qmp.execute('query-status')).toMatchObject({ status: 'prelaunch' });
    await p.stop();
  });

  it('escalates to SIGTERM when QMP is gone, and to SIGKILL when the process does not react at all', async () => {
    const a = await start('term');
    await a.qmp.close();
    expect(await a.stop({ termTimeoutMs: 5_000 })).toMatchObject({ stoppedBy: 'SIGTERM', signal: null, code: 0 });

    const b = await start('kill');
    process.kill(b.pid, 'SIGSTOP'); // a hung QEMU: answers neither QMP nor SIGTERM
    const t0 = Date.now();
    expect(await b.stop({ quitTimeoutMs: 300, termTimeoutMs: 300 })).toMatchObject({ stoppedBy: 'SIGKILL', signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(processesMentioning(b.paths.dir)).toEqual([]);
  });

  it('a detached QEMU can be re-attached from its directory (agent restart) and stopped through the new handle', async () => {
    const first = await start('detached', ['-m', '64'], { detached: true });
    // The old agent's connection ends (QEMU serves one QMP client at a time).
    await first.qmp.close();
    const again = await QemuProcess.attach(first.paths.dir);
    expect(again.pid).toBe(first.pid);
    expect(await again.qmp.execute('query-status')).toMatchObject({ status: 'prelaunch' });
    expect((await again.stop()).stoppedBy).toBe('quit');
    await first.exited();
    expect(processesMentioning(first.paths.dir)).toEqual([]);
  });

  it('attach fails with QemuAttachError when there is nothing to attach to', async () => {
    await expect(QemuProcess.attach(join(root, 'never-started'))).rejects.toBeInstanceOf(QemuAttachError);
    // A pid file naming a live process that is not this directory's QEMU (the test runner itself).
    const dir = join(root, 'foreign-pid');
    const p = await start('foreign-pid');
    await p.stop();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(qemuPaths(dir).pidFile, String(process.pid));
    await expect(QemuProcess.attach(dir)).rejects.toMatchObject({ code: 'QEMU_ATTACH_FAILED', message: expect.stringMatching(/not the QEMU/) });
  });

  it('base arguments escape commas in paths the way QEMU expects', () => {
    const args = baseArgs(qemuPaths('/tmp/a,b'), { name: 'vm,1' });
    expect(args).toContain('socket,id=qmp,path=/tmp/a,,b/qmp.sock,server=on,wait=off');
    expect(args[args.indexOf('-name') + 1]).toBe('vm,,1');
    expect(args).toContain('-S');
    expect(baseArgs(qemuPaths('/tmp/x'), { running: true })).not.toContain('-S');
  });
});
