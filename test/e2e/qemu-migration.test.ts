/**
 * Live migration of a real VM (API.md §7.8, §8.4; issue 14 item 4): two agents with the QEMU
 * backend (h1, h2) and a gateway on one NATS prefix. The tiny guest's heartbeat on its serial
 * console goes on counting across the migration (no reboot: no second ready line), the task's
 * progress comes from QEMU's own migration status, and afterwards only h2 has a QEMU process of
 * the VM. A migration cancelled before it completes leaves the guest running on h1, and the
 * process h2 had prepared is stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X, waitTask, type RpcClient } from '../support/rpc.js';
import { completed, power, XENOPSD } from '../support/ops.js';
import { domainDir, GuestConsole, killQemu, qemuPids, tinyVm } from '../support/qemu.js';
import { vmId } from '../support/vms.js';
import { cleanupAll, respawn, spawnXenopsd, uniquePrefix, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

const QEMU_FLAGS = ['--backend', 'qemu', '--qemu-network', 'user'];
const BOOT_MS = 90_000;
const heartbeat = (line: string) => Number(/heartbeat (\d+)/.exec(line)?.[1]);
const NO_MAPS = { vdi_map: {}, vif_map: {}, pci_map: {}, compress: false, verify_dest: false, localhost_migration: false };

describe('NATS, QEMU backend: live migration between two hosts', () => {
  const prefix = uniquePrefix('qmig');
  const agents: Record<string, Xenopsd> = {};
  let gateway: Xenopsd;
  let c: RpcClient;

  beforeAll(async () => {
    const args = [...QEMU_FLAGS, '--socket', 'off', '--listen', 'off'];
    agents.h1 = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h1', extraArgs: args });
    agents.h2 = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h2', extraArgs: args });
    gateway = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h1' });
    c = gateway.client();
  }, 60_000);

  afterAll(async () => {
    if (process.env.XENOPS_TEST_DUMP) for (const [h, a] of Object.entries(agents)) process.stderr.write(`---- ${h}\n${a.stderr}\n`);
    for (const a of Object.values(agents)) await killQemu(a.dataDir);
  });

  const boot = async (id: string): Promise<GuestConsole> => {
    expect(await c.ok('VM.add', X({ vm: tinyVm(id) }))).toBe(id);
    const console = new GuestConsole(domainDir(agents.h1!.dataDir, id));
    console.mark();
    expect(await XENOPSD.run(c, id, { op: 'start' }, 'e2e', BOOT_MS)).toEqual(completed);
    expect(await XENOPSD.run(c, id, { op: 'unpause' }, 'e2e', BOOT_MS)).toEqual(completed);
    await console.waitFor(/xenops-guest ready/, BOOT_MS);
    return console;
  };

  it('the guest keeps counting across the migration; progress comes from QEMU; only h2 runs it after', async () => {
    const id = vmId('qm');
    const source = await boot(id);
    const before = heartbeat(await source.waitFor(/heartbeat/, 20_000));
    const task = await c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: 'xenops://h2' }));
    const progress: number[] = [];
    for (;;) {
      const t = await c.ok<{ state: [string, unknown] }>('Task.stat', X({ id: task }));
      if (t.state[0] !== 'Pending') {
        expect(t.state[0], JSON.stringify(t.state)).toBe('Completed');
        break;
      }
      progress.push(t.state[1] as number);
      expect(await power(c, id)).toBe('Running');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(progress.some((p) => p > 0 && p < 1)).toBe(true);
    expect(await power(c, id)).toBe('Running');
    expect(qemuPids(agents.h1!.dataDir, id)).toEqual([]);
    expect(qemuPids(agents.h2!.dataDir, id)).toHaveLength(1);
    // The destination's serial log starts with the migrated guest: no boot, the counter goes on.
    const dest = new GuestConsole(domainDir(agents.h2!.dataDir, id));
    const after = heartbeat(await dest.waitFor(/heartbeat/, 20_000));
    expect(after).toBeGreaterThan(before);
    expect(dest.lines().some((l) => l.includes('xenops-guest ready'))).toBe(false);
    expect(agents.h1!.stderr).toMatch(new RegExp(`vm ${id}: domain \\d+ migrated to host h2 \\(tcp:127\\.0\\.0\\.1:\\d+\\) in \\d+ ms, downtime \\d+ ms`));

    // And back: h1 runs it again, the counter still going on.
    const back = await waitTask(c, await c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: 'xenops://h1' })), { timeoutMs: 120_000 });
    expect(back.state[0], JSON.stringify(back.state)).toBe('Completed');
    const home = new GuestConsole(domainDir(agents.h1!.dataDir, id));
    home.mark();
    expect(heartbeat(await home.waitFor(/heartbeat/, 20_000))).toBeGreaterThan(after);
    expect(qemuPids(agents.h2!.dataDir, id)).toEqual([]);
    expect((await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })), { timeoutMs: 60_000 })).state[0]).toBe('Completed');
  }, 300_000);

  it('a localhost migration: a new QEMU beside the old one, the heartbeat on in the same serial.log; a restarted agent re-attaches to it', async () => {
    const id = vmId('ql');
    const console = await boot(id);
    const pidsBefore = qemuPids(agents.h1!.dataDir).length;
    for (let round = 1; round <= 2; round++) {
      const before = heartbeat(await console.waitFor(/heartbeat/, 20_000));
      const t = await waitTask(c, await c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: 'xenops://h1', localhost_migration: true })), { timeoutMs: 120_000 });
      expect(t.state[0], JSON.stringify(t.state)).toBe('Completed');
      expect(await power(c, id)).toBe('Running');
      expect(heartbeat(await console.waitFor(/heartbeat/, 20_000))).toBeGreaterThan(before);
      expect(qemuPids(agents.h1!.dataDir)).toHaveLength(pidsBefore);
    }
    expect(console.lines().some((l) => l.includes('xenops-guest ready'))).toBe(false);
    // The agent dies and comes back: it finds the domain where domain.json says it lives.
    await agents.h1!.kill9();
    agents.h1 = await respawn(agents.h1!);
    expect(agents.h1.stderr).toMatch(new RegExp(`vm ${id}: domain \\d+: re-attached to QEMU process`));
    expect(await power(c, id)).toBe('Running');
    const beat = heartbeat(await console.waitFor(/heartbeat/, 20_000));
    expect(heartbeat(await console.waitFor(/heartbeat/, 20_000))).toBeGreaterThan(beat);
    expect((await waitTask(c, await c.ok<string>('VM.shutdown', X({ id })), { timeoutMs: 60_000 })).state[0]).toBe('Completed');
    expect(qemuPids(agents.h1.dataDir)).toHaveLength(pidsBefore - 1);
  }, 300_000);

  it('cancelled before the transfer, or to a destination whose agent is gone: the guest runs on at the source, nothing is left at the destination', async () => {
    const id = vmId('qc');
    const source = await boot(id);
    // Cancelled at once: before the destination is ready, or while QEMU streams (then called off).
    const task = await c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: 'xenops://h2' }));
    await c.ok('Task.cancel', X({ id: task }));
    expect((await waitTask(c, task, { timeoutMs: 60_000 })).state).toEqual(['Failed', ['Cancelled', task]]);
    const beat = heartbeat(await source.waitFor(/heartbeat/, 20_000));
    expect(await power(c, id)).toBe('Running');
    // A process h2 had made ready is stopped once h2 sees the migration end elsewhere.
    for (let i = 0; i < 50 && qemuPids(agents.h2!.dataDir, id).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(qemuPids(agents.h2!.dataDir, id)).toEqual([]);

    await agents.h2!.kill9();
    const failed = await waitTask(c, await c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: 'xenops://h2' })), { timeoutMs: 60_000 });
    expect(failed.state).toEqual(['Failed', ['Failed_to_contact_remote_service', 'xenops://h2']]);
    expect(heartbeat(await source.waitFor(/heartbeat/, 20_000))).toBeGreaterThan(beat);
    expect(await power(c, id)).toBe('Running');
    expect(qemuPids(agents.h1!.dataDir, id)).toHaveLength(1);
  }, 300_000);
});
