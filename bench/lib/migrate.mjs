// The migration workloads of the bench (issue 14): migrations per second on the simulator (NATS:
// two agents and a gateway, VMs moved back and forth between h1 and h2 by concurrent clients;
// embedded: localhost migrations), and with QEMU the time and downtime of one live migration of
// the tiny guest through xenopsd against a raw QEMU-to-QEMU migration of the same guest.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemu } from '../../packages/actors/dist/index.js';
import { tinyVm } from './qemu.mjs';
import { Rpc, TaskWatcher } from './rpc.mjs';
import { startService } from './service.mjs';

const MIB = 1048576;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const round = (x) => +x.toFixed(1);
const NO_MAPS = { vdi_map: {}, vif_map: {}, pci_map: {}, compress: false, verify_dest: false, localhost_migration: false };

/**
 * Simulator migrations: `vms` running VMs, `clients` callers each migrating its share to the other
 * host (embedded: to this same host) until `migrations` are done.
 */
export async function simulatorMigrations({ mode, natsUrl, scratch, log, vmConfig, vms = 64, clients = 16, migrations = 1000, limitMs = 300_000 }) {
  const base = scratch('migrate');
  const services = [];
  const launch = async (cfg) => {
    const s = await startService(cfg).then((x) => x.ready);
    services.push(s);
    return s;
  };
  let gateway;
  const hosts = mode === 'nats' ? ['h1', 'h2'] : ['bench-host'];
  if (mode === 'nats') {
    for (const h of hosts) await launch({ ...base, natsUrl, role: 'agent', hostId: h, dataDir: join(base.dataDir, h) });
    gateway = await launch({ ...base, natsUrl, role: 'gateway', hostId: 'h1', dataDir: join(base.dataDir, 'gw') });
  } else gateway = await launch({ ...base, hostId: 'bench-host' });
  const rpc = new Rpc(gateway.url, { maxSockets: clients + 8 });
  const watcher = new TaskWatcher(rpc);
  await watcher.start();
  try {
    const ids = Array.from({ length: vms }, () => crypto.randomUUID());
    for (const id of ids) {
      await rpc.call('VM.add', { vm: vmConfig(id) });
      await watcher.wait(await rpc.call('VM.start', { id, paused: false, host: hosts[0] }));
      await watcher.wait(await rpc.call('VM.unpause', { id }));
    }
    const where = new Map(ids.map((id) => [id, 0]));
    const latencies = [];
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    const deadline = Date.now() + limitMs;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const mine = ids.filter((_, i) => i % clients === c);
        for (let k = 0; mine.length && next < migrations && Date.now() < deadline; k++) {
          next++;
          const id = mine[k % mine.length];
          const to = hosts[(where.get(id) + 1) % hosts.length];
          const t = performance.now();
          const task = await watcher.wait(await rpc.call('VM.migrate', { id, ...NO_MAPS, xenops_url: `xenops://${to}` }));
          latencies.push(performance.now() - t);
          if (task.state[0] === 'Completed') where.set(id, hosts.indexOf(to));
          else failed++;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const out = {
      vms, clients, migrations: latencies.length, failed, seconds: round(seconds),
      migrationsPerSecond: round(latencies.length / seconds),
      latency: { p50: round(pct(latencies, 50)), p99: round(pct(latencies, 99)) },
    };
    const verify = await fetch(`${gateway.url}/verify`).then((r) => r.json());
    out.invariantViolations = verify.invariantViolations?.length ?? -1;
    log(`[${mode}]   ${out.migrationsPerSecond} migrations/s (${out.migrations} by ${clients} clients, ${failed} failed), p50 ${out.latency.p50} ms, p99 ${out.latency.p99} ms; invariant violations ${out.invariantViolations}`);
    return out;
  } finally {
    await watcher.stop();
    rpc.close();
    for (const s of services.reverse()) await s.stop();
  }
}

async function serialLine(dir, re, timeoutMs = 300_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (re.test(readFileSync(join(dir, 'serial.log'), 'utf8'))) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`no ${re} in ${dir}/serial.log within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const finished = (e) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status));

/** A raw QEMU-to-QEMU live migration of the tiny guest over TCP: total time and QEMU's downtime. */
async function rawMigration(image, memoryMiB, root) {
  const { QemuProcess, SerialConsole, tinyGuestArgs } = qemu;
  const a = await QemuProcess.start({ dir: join(root, 'a'), args: tinyGuestArgs(image, { memoryMiB }) });
  const ca = await SerialConsole.connect(a.paths.serial);
  await a.qmp.execute('cont');
  await ca.waitForLine(/^xenops-guest ready$/, { timeoutMs: 120_000 });
  await ca.waitForLine(/heartbeat/, { timeoutMs: 10_000 });
  const b = await QemuProcess.start({ dir: join(root, 'b'), args: tinyGuestArgs(image, { memoryMiB, extra: ['-incoming', 'defer'] }) });
  const cb = await SerialConsole.connect(b.paths.serial);
  try {
    for (const p of [a, b]) await p.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await b.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    const addr = (await b.qmp.execute('query-migrate'))['socket-address'][0];
    await a.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 2 ** 30 });
    const t = performance.now();
    const done = a.qmp.waitForEvent('MIGRATION', { predicate: finished, timeoutMs: 120_000 });
    await a.qmp.execute('migrate', { uri: `tcp:${addr.host}:${addr.port}` });
    if ((await done).data?.status !== 'completed') throw new Error('raw migration failed');
    const completedMs = performance.now() - t;
    const info = await a.qmp.execute('query-migrate');
    await b.qmp.execute('cont');
    const runningMs = performance.now() - t;
    await cb.waitForLine(/heartbeat/, { timeoutMs: 20_000 });
    return { totalMs: completedMs, toRunningMs: runningMs, qemuDowntimeMs: info.downtime, switchOverMs: info.downtime + (runningMs - completedMs) };
  } finally {
    await ca.close();
    await cb.close();
    await a.stop();
    await b.stop();
  }
}

const stamp = (line) => Date.parse(line.slice(0, 24));

/** The same guest migrated h1 → h2 through xenopsd (NATS, two QEMU agents): the task's time and the switch-over's downtime. */
export async function qemuMigrations({ natsUrl, log, runs = 3, memoryMiB = 160 }) {
  const image = qemu.guestImage();
  const raw = [];
  for (let i = 0; i < runs; i++) {
    const root = mkdtempSync(join(tmpdir(), 'xq-mig-raw-'));
    try {
      raw.push(await rawMigration(image, memoryMiB, root));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    log(`qemu raw migration ${i + 1}/${runs}: ${raw.at(-1).totalMs.toFixed(0)} ms, downtime ${raw.at(-1).qemuDowntimeMs} ms`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'xq-mig-svc-'));
  const prefix = `bench_qmig_${process.pid}_${Date.now().toString(36)}`;
  const flags = ['--backend', 'qemu', '--qemu-network', 'user'];
  const agents = {};
  const services = [];
  try {
    for (const h of ['h1', 'h2']) {
      agents[h] = await startService({ mode: 'nats', natsUrl, prefix, role: 'agent', hostId: h, dataDir: join(dataDir, h), extraArgs: flags }).then((s) => s.ready);
      services.push(agents[h]);
    }
    const gateway = await startService({ mode: 'nats', natsUrl, prefix, role: 'gateway', hostId: 'h1', dataDir: join(dataDir, 'gw') }).then((s) => s.ready);
    services.push(gateway);
    const lines = { h1: [], h2: [] };
    for (const h of ['h1', 'h2']) agents[h].child.stderr.on('data', (d) => lines[h].push(...d.toString().split('\n')));
    const rpc = new Rpc(gateway.url);
    const watcher = new TaskWatcher(rpc);
    await watcher.start();
    const id = 'bench-mig';
    await rpc.call('VM.add', { vm: tinyVm(id, image, memoryMiB) });
    await watcher.wait(await rpc.call('VM.start', { id, paused: false, host: 'h1' }));
    await watcher.wait(await rpc.call('VM.unpause', { id }));
    await serialLine(join(dataDir, 'h1', 'qemu', id), /heartbeat/);
    const service = [];
    let from = 'h1';
    for (let i = 0; i < runs; i++) {
      const to = from === 'h1' ? 'h2' : 'h1';
      lines.h1.length = 0;
      lines.h2.length = 0;
      const t = performance.now();
      const task = await watcher.wait(await rpc.call('VM.migrate', { id, ...NO_MAPS, xenops_url: `xenops://${to}` }));
      const taskMs = performance.now() - t;
      if (task.state[0] !== 'Completed') throw new Error(`migration ${i + 1} failed: ${JSON.stringify(task.state)}`);
      await new Promise((r) => setTimeout(r, 200)); // the agents' log lines of the last steps
      const sent = lines[from].find((l) => l.includes(`vm ${id}: domain`) && l.includes(`migrated to host ${to}`));
      const running = lines[to].find((l) => l.includes(`vm ${id}: domain`) && l.endsWith(' running'));
      const m = /in (\d+) ms, downtime (\d+) ms/.exec(sent ?? '');
      if (!m || !running) throw new Error(`migration ${i + 1}: the agents' log lines were not found`);
      const qemuDowntimeMs = Number(m[2]);
      service.push({ taskMs, qemuTotalMs: Number(m[1]), qemuDowntimeMs, switchOverMs: qemuDowntimeMs + (stamp(running.replace(/^.*?(\d{4}-)/, '$1')) - stamp(sent.replace(/^.*?(\d{4}-)/, '$1'))) });
      log(`qemu migration through xenopsd ${i + 1}/${runs} (${from} → ${to}): task ${taskMs.toFixed(0)} ms, QEMU ${m[1]} ms, downtime ${service.at(-1).switchOverMs} ms`);
      from = to;
    }
    await watcher.wait(await rpc.call('VM.shutdown', { id }));
    await watcher.stop();
    rpc.close();
    const med = (xs, k) => round(median(xs.map((x) => x[k])));
    const out = {
      memoryMiB, runs,
      raw: { totalMs: med(raw, 'totalMs'), qemuDowntimeMs: med(raw, 'qemuDowntimeMs'), switchOverMs: med(raw, 'switchOverMs') },
      service: { taskMs: med(service, 'taskMs'), qemuTotalMs: med(service, 'qemuTotalMs'), qemuDowntimeMs: med(service, 'qemuDowntimeMs'), switchOverMs: med(service, 'switchOverMs') },
    };
    out.taskVsRaw = (out.service.taskMs / out.raw.totalMs).toFixed(2);
    out.downtimeVsRaw = (out.service.switchOverMs / out.raw.switchOverMs).toFixed(2);
    return out;
  } finally {
    for (const s of services.reverse()) await s.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
