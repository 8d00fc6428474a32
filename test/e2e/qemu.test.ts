/**
 * Real VMs (API.md §8.4): `xenopsd --backend qemu --qemu-network user` boots the tiny guest
 * (`npm run guest-image`) under TCG, and every power operation is checked from the guest's side,
 * on its serial console: the ready line, the heartbeat stopping while paused and going on after a
 * suspend and resume, a clean shutdown and a reboot by ACPI, the guest's own power-off, reboot and
 * panic carried out per the VM's action lists, a disk hot-plugged and seen by the guest, a CD
 * ejected and inserted, the agent killed with `kill -9` and restarted (still Running, one QEMU),
 * starts cancelled at different points leaving no process. Both stores run the core scenario; the
 * rest runs on the embedded store (each boot costs seconds of CPU under TCG).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X, type RpcClient } from '../support/rpc.js';
import { completed, power, stat, waitVm, XENOPSD, sleep } from '../support/ops.js';
import { domainDir, GuestConsole, killQemu, qemuPids, tinyVm } from '../support/qemu.js';
import { vmId } from '../support/vms.js';
import { cleanupAll, REPO_ROOT, respawn, spawnXenopsd, startNatsCluster, type Xenopsd } from '../support/xenopsd.js';

const QEMU_FLAGS = ['--backend', 'qemu', '--qemu-network', 'user'];
const BOOT_MS = 90_000;
const dataDirs: string[] = [];

afterAll(async () => {
  for (const d of dataDirs) await killQemu(d);
  await cleanupAll();
});

interface Svc {
  client(): RpcClient;
  url(): string;
  dataDir: string;
  killAgent(): Promise<void>;
  restartAgent(): Promise<void>;
}

async function service(store: 'embedded' | 'nats'): Promise<Svc> {
  if (store === 'embedded') {
    let proc: Xenopsd = await spawnXenopsd({ mode: 'embedded', extraArgs: QEMU_FLAGS });
    dataDirs.push(proc.dataDir);
    return {
      client: () => proc.client(),
      url: () => proc.url!,
      dataDir: proc.dataDir,
      killAgent: () => proc.kill9(),
      async restartAgent() {
        proc = await respawn(proc);
      },
    };
  }
  const cluster = await startNatsCluster({ agentArgs: QEMU_FLAGS });
  dataDirs.push(cluster.agent.dataDir);
  return {
    client: () => cluster.client(),
    url: () => cluster.gateway.url!,
    dataDir: cluster.agent.dataDir,
    killAgent: () => cluster.agent.kill9(),
    async restartAgent() {
      cluster.agent = await respawn(cluster.agent);
    },
  };
}

const run = (c: RpcClient, id: string, op: Parameters<typeof XENOPSD.run>[2]) => XENOPSD.run(c, id, op, 'e2e', BOOT_MS);
const runT = async (c: RpcClient, method: string, args: Record<string, unknown>) => XENOPSD.wait(c, await c.ok<string>(method, X(args)), BOOT_MS);

/** Adds the tiny guest's VM, starts and unpauses it, and waits for its ready line. */
async function boot(c: RpcClient, dataDir: string, id: string, overrides: Record<string, unknown> = {}): Promise<{ console: GuestConsole; ms: number }> {
  expect(await c.ok('VM.add', X({ vm: tinyVm(id, overrides) }))).toBe(id);
  const console = new GuestConsole(domainDir(dataDir, id));
  console.mark();
  const t0 = Date.now();
  expect(await run(c, id, { op: 'start' })).toEqual(completed);
  expect(await run(c, id, { op: 'unpause' })).toEqual(completed);
  await console.waitFor(/xenops-guest ready/, BOOT_MS);
  return { console, ms: Date.now() - t0 };
}

/** Runs the `xenops` CLI against `url` with `input` on its stdin. */
function cli(url: string, args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js'), '--url', url, ...args], {
      env: { ...process.env, XENOPS_URL: undefined, XENOPS_SOCKET: undefined } as NodeJS.ProcessEnv,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

const heartbeat = (line: string) => Number(/heartbeat (\d+)/.exec(line)?.[1]);

describe.each(['embedded', 'nats'] as const)('%s store: the tiny guest under QEMU', (store) => {
  it(
    'boots to the ready line; pause stops the heartbeat, unpause resumes it; suspend and resume go on counting; clean shutdown leaves no process',
    async () => {
      const svc = await service(store);
      const c = svc.client();
      const id = vmId('q');
      const { console, ms } = await boot(c, svc.dataDir, id);
      process.stderr.write(`qemu e2e (${store}): VM.start → xenops-guest ready in ${ms} ms\n`);
      const [, st] = await stat(c, id);
      expect(st.power_state).toBe('Running');
      const consoles = st.consoles as { protocol: string; port: number; path: string }[];
      expect(consoles).toEqual([
        { protocol: 'Rfb', port: expect.any(Number), path: '' },
        { protocol: 'Vt100', port: 0, path: path.join(domainDir(svc.dataDir, id), 'serial.sock') },
      ]);
      expect(consoles[0]!.port).toBeGreaterThanOrEqual(5900);
      expect(qemuPids(svc.dataDir, id)).toHaveLength(1);

      // Pause: no heartbeat while paused; unpause: it goes on.
      await console.waitFor(/heartbeat/);
      expect(await run(c, id, { op: 'pause' })).toEqual(completed);
      expect(await power(c, id)).toBe('Paused');
      await sleep(300);
      console.mark();
      await sleep(2_500);
      expect(console.lines().filter((l) => l.includes('heartbeat'))).toEqual([]);
      expect(await run(c, id, { op: 'unpause' })).toEqual(completed);
      await console.waitFor(/heartbeat/, 10_000);

      // Suspend to a file and resume: the counter goes on from where it stopped.
      const last = heartbeat(await console.waitFor(/heartbeat/, 10_000));
      const image = path.join(svc.dataDir, 'suspend.img');
      expect(await run(c, id, { op: 'suspend', disk: ['Local', image] })).toEqual(completed);
      expect(await power(c, id)).toBe('Suspended');
      expect(qemuPids(svc.dataDir, id)).toEqual([]);
      console.mark();
      expect(await run(c, id, { op: 'resume', disk: ['Local', image] })).toEqual(completed);
      expect(await power(c, id)).toBe('Paused');
      expect(await run(c, id, { op: 'unpause' })).toEqual(completed);
      const next = heartbeat(await console.waitFor(/heartbeat/, 20_000));
      expect(next).toBeGreaterThan(last);
      expect(next).toBeLessThan(last + 5);
      expect(console.lines().some((l) => l.includes('xenops-guest ready'))).toBe(false);

      // Clean shutdown by ACPI: the guest's own power-off line, then Halted and no process.
      console.mark();
      expect(await run(c, id, { op: 'shutdown', timeout: 30 })).toEqual(completed);
      expect(await power(c, id)).toBe('Halted');
      expect(qemuPids(svc.dataDir, id)).toEqual([]);
    },
    240_000,
  );
});

describe('embedded store: the tiny guest under QEMU, the rest of §8.4', () => {
  let svc: Svc;
  let c: RpcClient;
  beforeAll(async () => {
    svc = await service('embedded');
    c = svc.client();
  });

  it(
    'reboot by ACPI (the ready line again, a new domid); a disk, a CD and a NIC hot-plugged and seen by the guest',
    async () => {
      const id = vmId('q');
      const { console } = await boot(c, svc.dataDir, id);
      const [, before] = await stat(c, id);
      console.mark();
      expect(await run(c, id, { op: 'reboot', timeout: 30 })).toEqual(completed);
      await console.waitFor(/xenops-guest ready/, BOOT_MS);
      expect(heartbeat(await console.waitFor(/heartbeat/, 10_000))).toBeLessThan(3);
      const [, after] = await stat(c, id);
      expect(after.power_state).toBe('Running');
      expect(after.domids[0]).toBeGreaterThan(before.domids[0]!);
      expect(qemuPids(svc.dataDir, id)).toHaveLength(1);

      // Disk hot-plug seen by the guest, unplugged again.
      const disk = path.join(svc.dataDir, 'data.img');
      writeFileSync(disk, Buffer.alloc(8 * 1048576));
      await c.ok('VBD.add', X({ vbd: { id: [id, 'xvdb'], mode: 'ReadWrite', ty: 'Disk', backend: ['Local', disk] } }));
      expect(await console.ask('lsblk')).toEqual([]);
      expect(await runT(c, 'VBD.plug', { id: [id, 'xvdb'] })).toEqual(completed);
      let seen: string[] = [];
      for (let i = 0; i < 20 && seen.length === 0; i++) seen = await console.ask('lsblk');
      expect(seen).toEqual(['vda 8388608']);
      expect(await runT(c, 'VBD.unplug', { id: [id, 'xvdb'], force: false })).toEqual(completed);
      // QEMU reports the unplug when the guest ejected the slot; /sys/block may lag a moment behind.
      for (let i = 0; i < 20 && seen.length > 0; i++) seen = await console.ask('lsblk');
      expect(seen).toEqual([]);

      // A CD: inserted at plug, ejected, inserted again; inserting into a full drive is refused.
      const iso = path.join(svc.dataDir, 'cd.iso');
      writeFileSync(iso, Buffer.alloc(2 * 1048576));
      await c.ok('VBD.add', X({ vbd: { id: [id, 'hdc'], mode: 'ReadOnly', ty: 'CDROM', backend: ['Local', iso] } }));
      expect(await runT(c, 'VBD.plug', { id: [id, 'hdc'] })).toEqual(completed);
      let cd: string[] = [];
      for (let i = 0; i < 20 && cd.length === 0; i++) cd = await console.ask('lsblk');
      expect(cd).toEqual(['sr0 2097152']);
      expect(await runT(c, 'VBD.eject', { id: [id, 'hdc'] })).toEqual(completed);
      expect(await runT(c, 'VBD.insert', { id: [id, 'hdc'], disk: ['Local', iso] })).toEqual(completed);
      expect(await runT(c, 'VBD.insert', { id: [id, 'hdc'], disk: ['Local', iso] })).toEqual({ state: 'Failed', error: 'Media_present' });

      // A NIC with the VIF's MAC; its carrier follows VIF.set_carrier; unplugged again.
      await c.ok('VIF.add', X({ vif: { id: [id, 'eth0'], position: 0, mac: '02:00:00:00:00:0a' } }));
      expect(await runT(c, 'VIF.plug', { id: [id, 'eth0'] })).toEqual(completed);
      let nics: string[] = [];
      for (let i = 0; i < 20 && nics.length === 0; i++) nics = await console.ask('lsnet');
      expect(nics).toEqual(['eth0 02:00:00:00:00:0a up']);
      expect(await runT(c, 'VIF.set_carrier', { id: [id, 'eth0'], carrier: false })).toEqual(completed);
      expect(await console.ask('lsnet')).toEqual(['eth0 02:00:00:00:00:0a down']);
      expect(await runT(c, 'VIF.unplug', { id: [id, 'eth0'] })).toEqual(completed);
      for (let i = 0; i < 20 && nics.length > 0; i++) nics = await console.ask('lsnet');
      expect(nics).toEqual([]);
      expect(await run(c, id, { op: 'shutdown' })).toEqual(completed);
      expect(qemuPids(svc.dataDir, id)).toEqual([]);
    },
    240_000,
  );

  it(
    'the guest powers off, reboots and panics by itself: on_shutdown, on_reboot, on_crash',
    async () => {
      const off = vmId('off');
      const { console: offConsole } = await boot(c, svc.dataDir, off);
      await offConsole.order('poweroff', /xenops-guest powering off/);
      await waitVm(c, off, (s) => s?.[1].power_state === 'Halted', 'Halted after the guest powered off', 30_000);
      expect(qemuPids(svc.dataDir, off)).toEqual([]);

      const rb = vmId('rb');
      const { console: rbConsole } = await boot(c, svc.dataDir, rb);
      const [, before] = await stat(c, rb);
      rbConsole.mark();
      await rbConsole.order('reboot', /xenops-guest rebooting/);
      await rbConsole.waitFor(/xenops-guest ready/, BOOT_MS);
      const [, after] = await stat(c, rb);
      expect(after.power_state).toBe('Running');
      expect(after.domids[0]).toBeGreaterThan(before.domids[0]!);
      expect(qemuPids(svc.dataDir, rb)).toHaveLength(1);

      // on_crash Pause keeps the panicked domain, paused.
      rbConsole.mark();
      await c.ok('VM.add', X({ vm: tinyVm(rb, { on_crash: ['Pause'] }) }));
      await rbConsole.order('panic', /xenops-guest panicking/);
      await waitVm(c, rb, (s) => s?.[1].power_state === 'Paused', 'Paused after the panic', 30_000);
      expect(qemuPids(svc.dataDir, rb)).toHaveLength(1);
      expect(await run(c, rb, { op: 'shutdown' })).toEqual(completed);
      expect(qemuPids(svc.dataDir, rb)).toEqual([]);
    },
    300_000,
  );

  it(
    'kill -9 of the agent with a VM running: after the restart it is still Running, on the same domid and the same QEMU',
    async () => {
      const id = vmId('k');
      const { console } = await boot(c, svc.dataDir, id);
      const [, before] = await stat(c, id);
      const [pid] = qemuPids(svc.dataDir, id);
      await svc.killAgent();
      await svc.restartAgent();
      c = svc.client();
      const [, after] = await stat(c, id);
      expect(after).toMatchObject({ power_state: 'Running', domids: before.domids });
      expect(qemuPids(svc.dataDir, id)).toEqual([pid]);
      console.mark();
      await console.waitFor(/heartbeat/, 10_000);

      // xenops console: what is typed reaches the guest, its answer comes back; the end of input detaches.
      const attached = await cli(svc.url(), ['console', id], 'lsblk\n');
      expect(attached.code).toBe(0);
      expect(attached.stdout).toContain('xenops-guest lsblk done');
      expect(attached.stderr).toContain('Ctrl-] detaches');
      const ctrl = await cli(svc.url(), ['console', id], 'lsnet\n\u001d');
      expect(ctrl.stderr).toContain('detached');
      // xenops screenshot: the VGA display as a PNG.
      const png = path.join(svc.dataDir, 'screen.png');
      const shot = await cli(svc.url(), ['screenshot', id, png]);
      expect(shot).toMatchObject({ code: 0, stdout: expect.stringMatching(/screen\.png: \d+x\d+ screenshot/) });
      expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');

      // The re-attached domain obeys: pause, then a hard shutdown.
      expect(await run(c, id, { op: 'pause' })).toEqual(completed);
      expect(await power(c, id)).toBe('Paused');
      expect(await run(c, id, { op: 'shutdown' })).toEqual(completed);
      expect(qemuPids(svc.dataDir, id)).toEqual([]);
    },
    240_000,
  );

  it(
    'a start cancelled at different points leaves no QEMU process and the VM Halted',
    async () => {
      for (const afterMs of [0, 150, 400, 800]) {
        const id = vmId('cx');
        await c.ok('VM.add', X({ vm: tinyVm(id) }));
        await c.ok('VBD.add', X({ vbd: { id: [id, 'xvda'], mode: 'ReadWrite', ty: 'Disk', backend: ['Local', path.join(svc.dataDir, 'data.img')] } }));
        const task = await XENOPSD.submit(c, id, { op: 'start' });
        await sleep(afterMs);
        await c.ok('Task.cancel', X({ id: task }));
        const end = await XENOPSD.wait(c, task, BOOT_MS);
        if (end.state === 'Completed') {
          // Too late to cancel: the start finished; shut it down.
          expect(await run(c, id, { op: 'shutdown' })).toEqual(completed);
        } else {
          expect(end).toEqual({ state: 'Failed', error: ['Cancelled', task] });
        }
        await waitVm(c, id, (s) => s?.[1].power_state === 'Halted', 'Halted', 30_000);
        expect(qemuPids(svc.dataDir, id), `cancelled after ${afterMs} ms`).toEqual([]);
      }
    },
    240_000,
  );
});
