#!/usr/bin/env node
// xenops-ts benchmark (issue 7). Plain Node ESM, no build step; `npm run bench` builds the service
// first. Every workload runs against a freshly started xenopsd, once embedded and once on NATS.
// Progress goes to stderr; the table to stdout; the figures to bench-results/<date>.json.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir, cpus, totalmem, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rpc, TaskWatcher } from './lib/rpc.mjs';
import { LeanRpc } from './lib/lean-rpc.mjs';
import { ROOT, cpuMeter, freePort, rssMiB, startService } from './lib/service.mjs';
import { growLog } from './lib/logbuild.mjs';
import { peerRun } from './lib/peer.mjs';
import { summarise } from './profile-summary.mjs';
import { qemuBench } from './lib/qemu.mjs';
import { faultRounds } from './lib/fault-rounds.mjs';
import { qemuMigrations, simulatorMigrations } from './lib/migrate.mjs';
import { httpFloor } from './lib/http-floor.mjs';

const { values: opt } = parseArgs({
  options: {
    vms: { type: 'string' }, // cycle size
    clients: { type: 'string' },
    'wide-clients': { type: 'string' }, // the cycle again with this many clients (default 256)
    'warmup-vms': { type: 'string' }, // warm-up cycle before the measured one (default 1000)
    'read-vms': { type: 'string' }, // registered VMs for read / restart / memory
    running: { type: 'string' }, // running VMs for memory
    'replay-events': { type: 'string' },
    'stat-samples': { type: 'string' },
    'event-samples': { type: 'string' },
    modes: { type: 'string' }, // embedded,nats
    only: { type: 'string' }, // comma list of workloads: cycle,read,events,memory,restart,replay,split,faults,migrate,peer,floor,qemu,qemu-migrate (split, faults: NATS only; floor: with peer; qemu, qemu-migrate: real VMs, only when named)
    'qemu-parallel': { type: 'string' }, // VMs started at once in the qemu workload (default 16)
    nats: { type: 'string' },
    quick: { type: 'boolean' },
    profile: { type: 'boolean' }, // extra run per mode: the cycle with node --cpu-prof on the service
    'time-limit': { type: 'string' }, // seconds per workload (default 300)
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  process.stdout.write(`usage: npm run bench -- [--quick] [--vms N] [--clients N] [--read-vms N] [--running N]
       [--replay-events N] [--modes embedded,nats] [--only cycle,read,events,memory,restart,replay,split,faults,migrate,peer,floor,qemu,qemu-migrate]
       [--qemu-parallel N] [--wide-clients N] [--warmup-vms N]
       [--nats URL] [--profile] [--time-limit SECONDS] [--out DIR]
`);
  process.exit(0);
}
const quick = !!opt.quick;
const num = (v, full, q) => (v !== undefined ? Number(v) : quick ? q : full);
const O = {
  vms: num(opt.vms, 1000, 100),
  clients: num(opt.clients, 64, 64),
  wideClients: num(opt['wide-clients'], 256, 256),
  warmupVms: num(opt['warmup-vms'], 1000, 50),
  readVms: num(opt['read-vms'], 10000, 1000),
  running: num(opt.running, 1000, 100),
  replayEvents: num(opt['replay-events'], 1_000_000, 50_000),
  statSamples: num(opt['stat-samples'], 5000, 1000),
  eventSamples: num(opt['event-samples'], 500, 100),
  modes: (opt.modes ?? 'embedded,nats').split(','),
  only: new Set((opt.only ?? 'cycle,read,events,memory,restart,replay,split,faults,migrate,peer').split(',')),
  natsUrl: opt.nats ?? process.env.XENOPS_NATS_URL ?? 'nats://127.0.0.1:4222',
  limitMs: num(opt['time-limit'], 300, 60) * 1000,
  outDir: opt.out ?? join(ROOT, 'bench-results'),
  profile: !!opt.profile,
};
const log = (s) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
process.on('unhandledRejection', (e) => log(`unhandled rejection (ignored): ${e?.message ?? e}`));

// ---------- helpers ----------
function pct(values, p) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}
const lat = (values) => ({ n: values.length, p50: pct(values, 0.5), p99: pct(values, 0.99), max: pct(values, 1) });

function vmConfig(id) {
  return {
    id, name: `bench-${id.slice(0, 8)}`, ssidref: 0, xsdata: {}, platformdata: { acpi: '1' }, bios_strings: {},
    ty: ['HVM', { boot_order: 'cd' }], suppress_spurious_page_faults: false,
    memory_static_max: 1073741824, memory_dynamic_max: 1073741824, memory_dynamic_min: 536870912,
    vcpu_max: 2, vcpus: 2, scheduler_params: { priority: [256, 0], affinity: [] },
    on_crash: ['Shutdown'], on_shutdown: ['Shutdown'], on_reboot: ['Start'], pci_msitranslate: true, pci_power_mgmt: false,
  };
}

/** Runs `fn(item)` over items with `clients` concurrent workers; stops taking items at the deadline. */
async function pool(items, clients, fn, deadlineMs = O.limitMs) {
  const end = performance.now() + deadlineMs;
  let next = 0;
  let done = 0;
  let truncated = false;
  const worker = async () => {
    while (next < items.length) {
      if (performance.now() > end) {
        truncated = true;
        return;
      }
      await fn(items[next++]);
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(clients, items.length) }, worker));
  return { done, truncated };
}

const OPS = ['add', 'start', 'unpause', 'shutdown', 'remove'];

/** The cycle: N VMs, each add → start → unpause → shutdown (hard) → remove, with `clients` clients. */
async function cycle(rpc, watcher, n, clients) {
  const per = Object.fromEntries(OPS.map((o) => [o, []]));
  const all = [];
  const timed = async (op, f) => {
    const t = performance.now();
    await f();
    const d = performance.now() - t;
    per[op].push(d);
    all.push(d);
  };
  const ids = Array.from({ length: n }, () => crypto.randomUUID());
  const callsBefore = rpc.calls;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let errors = 0;
  let firstError;
  const { done, truncated } = await pool(ids, clients, async (id) => {
    try {
      await timed('add', () => rpc.call('VM.add', { vm: vmConfig(id) }));
      await timed('start', async () => watcher.wait(await rpc.call('VM.start', { id, paused: false })));
      await timed('unpause', async () => watcher.wait(await rpc.call('VM.unpause', { id })));
      await timed('shutdown', async () => watcher.wait(await rpc.call('VM.shutdown', { id })));
      await timed('remove', () => rpc.call('VM.remove', { id }));
    } catch (e) {
      // Counted and reported (a cycle with errors fails the run), not thrown: the other clients go on.
      errors++;
      firstError ??= String(e.message ?? e);
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (errors) log(`  cycle: ${errors} VMs failed; the first: ${firstError}`);
  return {
    vms: done, clients, truncated, errors, firstError, seconds, ops: 5 * done, opsPerSecond: (5 * done) / seconds,
    clientCpuMsPerOp: (cpu.user + cpu.system) / 1000 / (5 * done),
    rpcCalls: rpc.calls - callsBefore, latency: lat(all), perOp: Object.fromEntries(OPS.map((o) => [o, lat(per[o])])),
  };
}

/** A cycle of O.vms VMs with the service's CPU time (whole process and main thread) per operation. */
async function measuredCycle(svc, rpc, watcher, clients, mode) {
  const serviceCpu = cpuMeter(svc.pid);
  const mainThreadCpu = cpuMeter(svc.pid, { mainThread: true });
  // On NATS the server's CPU is part of every operation's cost on the same two cores.
  const natsPid = mode === 'nats' ? natsServerPid() : undefined;
  const natsCpu = natsPid ? cpuMeter(natsPid) : undefined;
  const c = await cycle(rpc, watcher, O.vms, clients);
  return { ...c, serviceCpuMsPerOp: serviceCpu(c.ops), serviceMainThreadCpuMsPerOp: mainThreadCpu(c.ops), natsServerCpuMsPerOp: natsCpu?.(c.ops) };
}

async function addMany(rpc, ids, clients) {
  const t0 = performance.now();
  const r = await pool(ids, clients, (id) => rpc.call('VM.add', { vm: vmConfig(id) }));
  const seconds = (performance.now() - t0) / 1000;
  return { ...r, seconds, perSecond: r.done / seconds };
}

/** One client, VM.stat back to back on random registered VMs, `count` times or until stop.flag. */
async function readLoop(rpc, ids, { count = Infinity, stop, warmup = 0 } = {}) {
  // Warm-up calls (not recorded): the first few thousand calls of a path run before V8 has
  // optimised it and would measure the JIT, not the service.
  for (let i = 0; i < warmup; i++) await rpc.call('VM.stat', { id: ids[i % ids.length] });
  const samples = [];
  const end = performance.now() + O.limitMs;
  while (samples.length < count && !(stop && stop.flag) && performance.now() < end) {
    const id = ids[(Math.random() * ids.length) | 0];
    const t = performance.now();
    await rpc.call('VM.stat', { id });
    samples.push(performance.now() - t);
  }
  return lat(samples);
}

/**
 * UPDATES wake-up: a watcher parks UPDATES.get(last_id = head); the writer then makes a change
 * (UPDATES.refresh_vm, a synchronous write that signals the VM). Reported: send of the write →
 * wake-up of the watcher with the VM in its ids (upper bound: includes the durable append), and
 * the writer's own reply time for comparison.
 */
async function eventsProbe(rpc, watchRpc, vmId, { count = Infinity, stop, warmup = 0 } = {}) {
  if (warmup > 0) await eventsProbe(rpc, watchRpc, vmId, { count: warmup });
  const wake = [];
  const write = [];
  const end = performance.now() + O.limitMs;
  while (wake.length < count && !(stop && stop.flag) && performance.now() < end) {
    let last = await watchRpc.call('UPDATES.last_id');
    let parked = 0;
    const woke = (async () => {
      for (;;) {
        const t = performance.now();
        const [, ids, next] = await watchRpc.call('UPDATES.get', { last_id: last, timeout: 10 }, 30_000);
        parked = performance.now() - t;
        last = next;
        if (ids.some((x) => x[0] === 'Vm' && x[1] === vmId)) return performance.now();
      }
    })();
    await new Promise((r) => setTimeout(r, 3)); // let the get park on the server
    const s = performance.now();
    await rpc.call('UPDATES.refresh_vm', { id: vmId });
    write.push(performance.now() - s);
    wake.push((await woke) - s);
    void parked;
  }
  return { wake: lat(wake), write: lat(write) };
}

/** The nats-server serving `O.natsUrl` (the one whose command line names its port; else the only one). */
function natsServerPid() {
  const port = new URL(O.natsUrl).port || '4222';
  const servers = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== 'nats-server') continue;
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const named = args.some((a, i) => ((a === '-p' || a === '--port') && args[i + 1] === port) || a === `--port=${port}` || a.endsWith(`:${port}`));
      if (named) return Number(d);
      servers.push(Number(d));
    } catch {}
  }
  return servers.length === 1 ? servers[0] : undefined;
}

async function natsCleanup(prefix) {
  try {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: O.natsUrl });
    const jsm = await jetstreamManager(nc);
    const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '_');
    for (const s of [`${safe}_EVENTS`, `KV_${safe}_snapshots`, `OBJ_${safe}_snapshots`]) await jsm.streams.delete(s).catch(() => {});
    await nc.close();
  } catch (e) {
    log(`  nats cleanup of ${prefix} failed: ${e.message}`);
  }
}

async function natsVersion() {
  try {
    const { connect } = await import('@nats-io/transport-node');
    const nc = await connect({ servers: O.natsUrl });
    const v = nc.info?.version;
    await nc.close();
    return v;
  } catch {
    return undefined;
  }
}

/** Kill/restart rounds of the NATS fault suite (issue 17). */
const FAULT_ROUNDS = 20;

// ---------- one mode ----------
async function runMode(mode) {
  const res = { mode, loadavgStart: loadavg() };
  const cleanups = [];
  const services = [];
  // A data dir and a NATS prefix of their own, removed when the mode ends.
  const scratch = (label) => {
    const dataDir = mkdtempSync(join(tmpdir(), `xenops-bench-${mode}-${label}-`));
    const prefix = `bench_${label}_${process.pid}_${Date.now().toString(36)}`;
    cleanups.push(async () => {
      rmSync(dataDir, { recursive: true, force: true });
      if (mode === 'nats') await natsCleanup(prefix);
    });
    return { mode, dataDir, prefix, natsUrl: O.natsUrl };
  };
  const launch = async (cfg) => {
    const svc = await startService(cfg).then((s) => s.ready);
    services.push(svc);
    return svc;
  };
  const fresh = async (label) => {
    const cfg = scratch(label);
    return { cfg, svc: await launch(cfg) };
  };
  try {
    const want = (w) => O.only.has(w);
    if (want('cycle') || want('read') || want('events') || want('memory') || want('restart')) {
      log(`[${mode}] starting a fresh service`);
      let { cfg, svc } = await fresh('main');
      const rpc = new Rpc(svc.url, { maxSockets: O.clients + 8 });
      const watcher = new TaskWatcher(rpc);
      await watcher.start();
      if (want('cycle')) {
        // Warm-up, not recorded: the first few thousand calls of each path run before V8 has
        // optimised it (a cold 1,000-VM cycle measured ~0.65× a warm one), and libvirt's peer is C.
        log(`[${mode}] warm-up cycle: ${O.warmupVms} VMs (not recorded)`);
        await cycle(rpc, watcher, O.warmupVms, O.clients);
        log(`[${mode}] cycle: ${O.vms} VMs × 5 ops, ${O.clients} clients (tasks awaited via one shared UPDATES.get loop + Task.stat)`);
        res.cycle = await measuredCycle(svc, rpc, watcher, O.clients, mode);
        log(`[${mode}]   ${res.cycle.opsPerSecond.toFixed(0)} ops/s, p50 ${res.cycle.latency.p50.toFixed(2)} ms, p99 ${res.cycle.latency.p99.toFixed(2)} ms; service CPU ${res.cycle.serviceCpuMsPerOp.toFixed(3)} ms/op (main thread ${res.cycle.serviceMainThreadCpuMsPerOp.toFixed(3)}), bench client CPU ${res.cycle.clientCpuMsPerOp.toFixed(3)} ms/op`);
        log(`[${mode}] cycle: ${O.vms} VMs × 5 ops, ${O.wideClients} clients`);
        const wideRpc = new Rpc(svc.url, { maxSockets: O.wideClients + 8 });
        const wideWatcher = new TaskWatcher(wideRpc);
        await wideWatcher.start();
        res.cycleWide = await measuredCycle(svc, wideRpc, wideWatcher, O.wideClients, mode);
        await wideWatcher.stop();
        wideRpc.close();
        log(`[${mode}]   ${res.cycleWide.opsPerSecond.toFixed(0)} ops/s with ${O.wideClients} clients (${res.cycleWide.errors} errors)`);
      }
      // Latency probes use one lean keep-alive connection each (lib/lean-rpc.mjs), not node:http.
      const probeRpc = new LeanRpc(svc.url);
      const watchRpc = new LeanRpc(svc.url);
      const probeVm = crypto.randomUUID();
      await rpc.call('VM.add', { vm: vmConfig(probeVm) });
      if (want('events')) {
        log(`[${mode}] events (idle): ${O.eventSamples} samples`);
        res.eventsIdle = await eventsProbe(probeRpc, watchRpc, probeVm, { count: O.eventSamples, warmup: 100 });
        log(`[${mode}]   wake p50 ${res.eventsIdle.wake.p50.toFixed(2)} ms, p99 ${res.eventsIdle.wake.p99.toFixed(2)} ms`);
      }
      const ids = Array.from({ length: O.readVms }, () => crypto.randomUUID());
      if (want('read') || want('memory') || want('restart')) {
        log(`[${mode}] registering ${O.readVms} VMs`);
        res.register = await addMany(rpc, ids, O.clients);
        log(`[${mode}]   ${res.register.perSecond.toFixed(0)} VM.add/s`);
        ids.length = res.register.done;
      }
      if (want('cycle') && res.register) {
        log(`[${mode}] cycle: ${O.vms} VMs × 5 ops with ${ids.length} more VMs registered`);
        res.cycleManyVms = await measuredCycle(svc, rpc, watcher, O.clients, mode);
        log(`[${mode}]   ${res.cycleManyVms.opsPerSecond.toFixed(0)} ops/s (${(res.cycleManyVms.opsPerSecond / res.cycle.opsPerSecond).toFixed(2)}× the cycle without them)`);
      }
      if (want('read')) {
        const readRpc = new LeanRpc(svc.url);
        // Idle means idle: registering 10,000 VMs leaves a fold snapshot being written and a
        // major GC under way; let them finish before measuring a sub-millisecond p99.
        await new Promise((r) => setTimeout(r, 2000));
        log(`[${mode}] read (idle): ${O.statSamples} VM.stat with ${ids.length} VMs`);
        res.readIdle = await readLoop(readRpc, ids, { count: O.statSamples, warmup: 2000 });
        log(`[${mode}]   p50 ${res.readIdle.p50.toFixed(3)} ms, p99 ${res.readIdle.p99.toFixed(3)} ms`);
        log(`[${mode}] read + events while a cycle of ${O.vms} VMs runs`);
        const stop = { flag: false };
        const reader = readLoop(readRpc, ids, { stop });
        reader.catch(() => {});
        const ev = want('events') ? eventsProbe(probeRpc, watchRpc, probeVm, { stop }) : undefined;
        ev?.catch(() => {});
        res.cycleLoaded = await cycle(rpc, watcher, O.vms, O.clients);
        stop.flag = true;
        res.readLoaded = await reader;
        if (ev) res.eventsLoaded = await ev;
        log(`[${mode}]   cycle ${res.cycleLoaded.opsPerSecond.toFixed(0)} ops/s; VM.stat p50 ${res.readLoaded.p50.toFixed(3)} ms, p99 ${res.readLoaded.p99.toFixed(3)} ms`);
        readRpc.close();
      }
      if (want('memory')) {
        const run = ids.slice(0, O.running);
        log(`[${mode}] memory: starting and unpausing ${run.length} of ${ids.length} VMs`);
        const t0 = performance.now();
        await pool(run, O.clients, async (id) => {
          await watcher.wait(await rpc.call('VM.start', { id, paused: false }));
          await watcher.wait(await rpc.call('VM.unpause', { id }));
        });
        const m = rssMiB(svc.pid);
        res.memory = { registered: ids.length + 1, running: run.length, rssMiB: m.rss, peakMiB: m.hwm, startSeconds: (performance.now() - t0) / 1000 };
        // And once the burst's garbage and buffers had time to go (transient vs held memory).
        await new Promise((r) => setTimeout(r, 3000));
        res.memory.rssSettledMiB = rssMiB(svc.pid).rss;
        // Where it is: the service's own /metrics (V8 heap, C++ objects, Buffers).
        const metricsText = (await rpc.get('/metrics')).body;
        for (const [key, name] of [['heapUsedMiB', 'nodejs_heap_size_used_bytes'], ['heapTotalMiB', 'nodejs_heap_size_total_bytes'], ['externalMiB', 'nodejs_external_memory_bytes'], ['arrayBuffersMiB', 'nodejs_array_buffers_bytes']]) {
          const v = new RegExp(`^${name} (\\S+)$`, 'm').exec(metricsText)?.[1];
          if (v !== undefined) res.memory[key] = Number(v) / 2 ** 20;
        }
        if (mode === 'nats') {
          const np = natsServerPid();
          if (np) res.memory.natsServerRssMiB = rssMiB(np).rss;
        }
        log(`[${mode}]   xenopsd RSS ${m.rss.toFixed(0)} MiB (peak ${m.hwm.toFixed(0)}, 3 s later ${res.memory.rssSettledMiB.toFixed(0)}; V8 heap used ${res.memory.heapUsedMiB?.toFixed(0)} of ${res.memory.heapTotalMiB?.toFixed(0)}, external ${res.memory.externalMiB?.toFixed(0)})`);
      }
      await watcher.stop();
      for (const r of [rpc, probeRpc, watchRpc]) r.close();
      if (want('restart')) {
        log(`[${mode}] restart: stopping, then timing spawn → first answered VM.list`);
        await svc.stop();
        const port = await freePort();
        const t0 = performance.now();
        const s2 = await startService({ ...cfg, port });
        services.push(s2);
        const r2 = new Rpc(`http://127.0.0.1:${port}`, { maxSockets: 1 });
        let listed;
        const end = t0 + O.limitMs;
        while (!listed && performance.now() < end && !s2.exited) {
          try {
            listed = await r2.call('VM.list', { unit: null });
          } catch {
            await new Promise((r) => setTimeout(r, 5));
          }
        }
        const seconds = (performance.now() - t0) / 1000;
        await s2.ready.catch(() => {});
        res.restart = { seconds, vms: listed?.length, readySeconds: s2.readyMs / 1000 };
        log(`[${mode}]   ${seconds.toFixed(2)} s to VM.list (${listed?.length} VMs)`);
        r2.close();
        svc = s2;
      }
      await svc.stop();
    }

    if (mode === 'nats' && want('split')) {
      // The distributed shape (ARCHITECTURE.md): the gateway and the host agent as two processes
      // sharing the NATS log and bus, the way hosts share one cluster. Same cycle, same clients.
      log(`[${mode}] split: cycle of ${O.vms} VMs against --role gateway + --role agent (two processes, one host id)`);
      const base = { ...scratch('split'), hostId: 'bench-host' };
      const agent = await launch({ ...base, role: 'agent', dataDir: join(base.dataDir, 'agent') });
      const gateway = await launch({ ...base, role: 'gateway', dataDir: join(base.dataDir, 'gateway') });
      const rpc = new Rpc(gateway.url, { maxSockets: O.clients + 8 });
      const watcher = new TaskWatcher(rpc);
      await watcher.start();
      log(`[${mode}]   warm-up cycle: ${O.warmupVms} VMs (not recorded)`);
      await cycle(rpc, watcher, O.warmupVms, O.clients);
      const agentCpu = cpuMeter(agent.pid);
      const gatewayCpu = cpuMeter(gateway.pid);
      const natsPid = natsServerPid();
      const natsCpu = natsPid ? cpuMeter(natsPid) : undefined;
      res.split = await cycle(rpc, watcher, O.vms, O.clients);
      res.split.agentCpuMsPerOp = agentCpu(res.split.ops);
      res.split.gatewayCpuMsPerOp = gatewayCpu(res.split.ops);
      res.split.natsServerCpuMsPerOp = natsCpu?.(res.split.ops);
      log(`[${mode}]   ${res.split.opsPerSecond.toFixed(0)} ops/s, p50 ${res.split.latency.p50.toFixed(2)} ms, p99 ${res.split.latency.p99.toFixed(2)} ms; CPU per op: gateway ${res.split.gatewayCpuMsPerOp.toFixed(3)} ms, agent ${res.split.agentCpuMsPerOp.toFixed(3)} ms`);
      await watcher.stop();
      rpc.close();
      await gateway.stop();
      await agent.stop();
    }

    if (want('migrate')) {
      const vms = quick ? 16 : 64;
      const migrations = quick ? 100 : 1000;
      log(`[${mode}] migrate: ${migrations} simulator migrations of ${vms} running VMs by 16 clients (${mode === 'nats' ? 'h1 <-> h2: two agents and a gateway' : 'localhost'})`);
      res.migrate = await simulatorMigrations({ mode, natsUrl: O.natsUrl, scratch, log, vmConfig, vms, clients: 16, migrations, limitMs: O.limitMs });
    }

    if (mode === 'nats' && want('faults')) {
      log(`[${mode}] faults: ${FAULT_ROUNDS} kill -9 rounds (nats-server, agent, gateway, both) under load from 16 clients, private nats-server`);
      res.faults = await faultRounds(FAULT_ROUNDS, 16, O.limitMs * 2, log);
      log(`[${mode}]   slowest recovery ${res.faults.slowestMs} ms; ${res.faults.passed ? 'nothing acknowledged lost' : 'FAILED: see the suite output'}`);
    }

    if (want('replay')) {
      log(`[${mode}] replay: recording a template through the service`);
      const { cfg, svc } = await fresh('replay');
      const rpc = new Rpc(svc.url, { maxSockets: 16 });
      const w = new TaskWatcher(rpc);
      await w.start();
      await pool(Array.from({ length: 8 }, () => crypto.randomUUID()), 8, async (id) => {
        await rpc.call('VM.add', { vm: vmConfig(id) });
        for (const [m, a] of [['VM.start', { paused: false }], ['VM.unpause', {}], ['VM.shutdown', {}]]) {
          const t = await rpc.call(m, { id, ...a });
          await w.wait(t);
          await rpc.call('Task.destroy', { id: t });
        }
        await rpc.call('VM.remove', { id });
      });
      await w.stop();
      rpc.close();
      await svc.stop();
      log(`[${mode}] replay: growing the log to ${O.replayEvents} events (copies of the template appended through core's EventLog + encodeBatch)`);
      const build = await growLog(
        ({ sqlite, nats }) =>
          mode === 'nats' ? nats.openNatsStores({ servers: O.natsUrl, prefix: cfg.prefix, name: 'bench log builder' }) : sqlite.openEmbeddedStores({ dataDir: cfg.dataDir }),
        O.replayEvents,
        { progress: log, deadlineMs: O.limitMs },
      );
      log(`[${mode}]   built ${build.events} events in ${build.messages} messages in ${build.seconds.toFixed(1)} s`);
      const t0 = performance.now();
      const s3 = await launch(cfg);
      const startSeconds = (performance.now() - t0) / 1000;
      const startCpuSeconds = Number(/started in [\d.]+ s \(([\d.]+) s of CPU\)/.exec(s3.log.join('\n'))?.[1]);
      log(`[${mode}]   service ready in ${startSeconds.toFixed(1)} s (${startCpuSeconds} s of CPU; load average ${loadavg()[0].toFixed(1)}); GET /verify`);
      const r3 = new Rpc(s3.url, { maxSockets: 1 });
      const v0 = performance.now();
      const v = await r3.get('/verify', O.limitMs * 2);
      const wall = (performance.now() - v0) / 1000;
      let report;
      try {
        report = JSON.parse(v.body);
      } catch {
        report = { error: v.body.slice(0, 300) };
      }
      res.replay = { ...report, differences: report.differences?.slice(0, 5), wallSeconds: wall, serviceStartSeconds: startSeconds, serviceStartCpuSeconds: startCpuSeconds, build };
      log(`[${mode}]   verify: ${report.events} events in ${report.seconds?.toFixed(2)} s = ${report.eventsPerSecond} events/s, ok ${report.ok}`);
      r3.close();
      await s3.stop();
    }
  } catch (e) {
    log(`[${mode}] FAILED: ${e.stack ?? e}`);
    for (const s of services) if (s.exited) log(`  service ${s.pid} exited ${s.exitCode}; last lines:\n${s.log.slice(-15).join('\n')}`);
    for (const s of services) await s.stop?.().catch(() => {});
    res.error = String(e.message ?? e);
  } finally {
    for (const c of cleanups) await c().catch(() => {});
  }
  res.loadavgEnd = loadavg();
  return res;
}

async function profileMode(mode, dir) {
  const dataDir = mkdtempSync(join(tmpdir(), `xenops-bench-prof-${mode}-`));
  const prefix = `bench_prof_${process.pid}_${Date.now().toString(36)}`;
  const profDir = join(dir, `${mode}`);
  mkdirSync(profDir, { recursive: true });
  try {
    const svc = await startService({ mode, dataDir, prefix, natsUrl: O.natsUrl, cpuProfDir: profDir }).then((s) => s.ready);
    const rpc = new Rpc(svc.url, { maxSockets: O.clients + 8 });
    const w = new TaskWatcher(rpc);
    await w.start();
    log(`[profile ${mode}] cycle of ${O.vms} VMs under node --cpu-prof`);
    const c = await cycle(rpc, w, O.vms, O.clients);
    await w.stop();
    rpc.close();
    await svc.stop();
    const file = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profDir, f)).sort().at(-1);
    return { opsPerSecond: c.opsPerSecond, ...summarise(file, 30) };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    if (mode === 'nats') await natsCleanup(prefix);
  }
}

// ---------- table ----------
const f = (x, d = 0) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const pp = (l, d = 2) => (l ? `${f(l.p50, d)} / ${f(l.p99, d)}` : '–');
function table(results, peer, floor) {
  const cols = results.map((r) => r.mode);
  const virsh = peer?.virsh?.opsPerSecond;
  // A cell with its verdict against issue 15's target for that mode (✓ met, ✗ missed).
  const judged = (text, ok) => (text === '–' || ok === undefined ? text : `${text} ${ok ? '✓' : '✗'}`);
  const byMode = (fn) => results.map((r) => fn(r, r.mode === 'nats'));
  const vsVirsh = (c, min) => (c && virsh ? judged(`${(c.opsPerSecond / virsh).toFixed(2)}×`, c.opsPerSecond / virsh >= min) : '–');
  const ratioOf = (a, b, min, errors = 0) => (a && b ? judged(`${(a.opsPerSecond / b.opsPerSecond).toFixed(2)}×${errors ? `, ${errors} errors` : ''}`, a.opsPerSecond / b.opsPerSecond >= min && !errors) : '–');
  const rows = [
    ['metric', ...cols, 'target (emb / nats)'],
    [`cycle ops/s (5 ops/VM, ${O.clients} clients)`, ...byMode((r) => f(r.cycle?.opsPerSecond)), ''],
    ['  vs libvirt virsh batch', ...byMode((r, nats) => vsVirsh(r.cycle, nats ? 0.5 : 1.0)), '≥ 1.0× / ≥ 0.5×'],
    ['  service CPU ms per op', ...byMode((r, nats) => (r.cycle ? judged(f(r.cycle.serviceCpuMsPerOp, 3), r.cycle.serviceCpuMsPerOp <= (nats ? 0.4 : 0.25)) : '–')), '≤ 0.25 / ≤ 0.4'],
    ['  of it the main thread ms per op', ...byMode((r) => f(r.cycle?.serviceMainThreadCpuMsPerOp, 3)), ''],
    ['  bench client CPU ms per op', ...byMode((r) => f(r.cycle?.clientCpuMsPerOp, 3)), ''],
    ['  nats-server CPU ms per op', ...byMode((r) => f(r.cycle?.natsServerCpuMsPerOp, 3)), ''],
    ['  JSON-RPC calls per op', ...byMode((r) => (r.cycle ? f(r.cycle.rpcCalls / r.cycle.ops, 2) : '–')), ''],
    ['cycle, gateway + agent processes ops/s', ...byMode((r) => f(r.split?.opsPerSecond)), ''],
    ['  vs libvirt virsh batch', ...byMode((r) => vsVirsh(r.split, 0.5)), '– / ≥ 0.5×'],
    ['  CPU ms per op: gateway + agent (+ nats-server)', ...byMode((r) => (r.split ? `${f(r.split.gatewayCpuMsPerOp, 3)} + ${f(r.split.agentCpuMsPerOp, 3)} (+ ${f(r.split.natsServerCpuMsPerOp, 3)})` : '–')), ''],
    ['cycle op p50 / p99 ms', ...byMode((r) => pp(r.cycle?.latency, 1)), ''],
    ...OPS.map((o) => [`  ${o} p50 / p99 ms`, ...byMode((r) => pp(r.cycle?.perOp[o], 1)), '']),
    [`cycle, ${O.wideClients} clients vs ${O.clients}`, ...byMode((r) => ratioOf(r.cycleWide, r.cycle, 1.0, r.cycleWide?.errors)), '≥ 1.00×, no error'],
    [`cycle, ${O.readVms} more VMs registered vs none`, ...byMode((r) => ratioOf(r.cycleManyVms, r.cycle, 0.9)), '≥ 0.90×'],
    [`cycle ops/s, ${O.readVms} VMs + reader`, ...byMode((r) => f(r.cycleLoaded?.opsPerSecond)), ''],
    ['VM.stat idle p50 / p99 ms', ...byMode((r) => pp(r.readIdle, 3)), ''],
    ['VM.stat in cycle p50 / p99 ms', ...byMode((r) => (r.readLoaded ? judged(pp(r.readLoaded, 3), r.readLoaded.p99 <= 5) : '–')), 'p99 ≤ 5'],
    ['UPDATES wake idle p50 / p99 ms', ...byMode((r) => (r.eventsIdle ? judged(pp(r.eventsIdle.wake), r.eventsIdle.wake.p99 <= 5) : '–')), 'p99 ≤ 5'],
    ['UPDATES wake in cycle p50/p99 ms', ...byMode((r) => pp(r.eventsLoaded?.wake)), ''],
    ['NATS faults: slowest recovery ms (rounds)', ...byMode((r) => (r.faults ? `${r.faults.slowestMs} (${r.faults.rounds.length})` : '–')), '≤ 2000'],
    ['migrations/s, simulator (p50 / p99 ms)', ...byMode((r) => (r.migrate ? `${f(r.migrate.migrationsPerSecond)} (${f(r.migrate.latency.p50, 1)} / ${f(r.migrate.latency.p99, 1)})` : '–')), ''],
    ['replay events/s (/verify)', ...byMode((r) => f(r.replay?.eventsPerSecond)), '≥ 100000'],
    ['start on the replay log: s (CPU s)', ...byMode((r) => (r.replay ? `${f(r.replay.serviceStartSeconds, 1)} (${f(r.replay.serviceStartCpuSeconds, 1)})` : '–')), '≤ 5'],
    ['replay: events, seconds', ...byMode((r) => (r.replay ? `${r.replay.events}, ${f(r.replay.seconds, 2)} s` : '–')), ''],
    [`restart to VM.list (${O.readVms} VMs) s`, ...byMode((r) => f(r.restart?.seconds, 2)), '≤ 2'],
    [`RSS MiB (${O.readVms} VMs, ${O.running} running)`, ...byMode((r) => f(r.memory?.rssMiB)), '≤ 400'],
  ];
  if (floor) {
    rows.push([`floor: bare node:http JSON-RPC req/s, ${floor.clients} clients`, ...results.map(() => ''), `${f(floor.requestsPerSecond)} (server ${f(floor.serverCpuMsPerRequest, 3)} ms/req)`]);
    rows.push(['  as cycle ops/s at each mode\'s calls per op', ...byMode((r) => (r.cycle ? `${f(floor.requestsPerSecond / (r.cycle.rpcCalls / r.cycle.ops))}${virsh ? ` (${(floor.requestsPerSecond / (r.cycle.rpcCalls / r.cycle.ops) / virsh).toFixed(2)}× virsh)` : ''}` : '–')), '']);
  }
  if (peer?.virsh) {
    rows.push(['libvirt test:/// virsh batch ops/s', ...results.map(() => ''), f(peer.virsh.opsPerSecond)]);
    for (const k of Object.keys(peer).filter((k) => k.startsWith('python')))
      rows.push([`libvirt python3 ${peer[k].threads} thr ops/s`, ...results.map(() => ''), f(peer[k].opsPerSecond)]);
  } else rows.push(['libvirt peer', ...results.map(() => ''), peer?.skipped ?? 'not run']);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r, j) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ') + (j === 0 ? `\n${w.map((n) => '-'.repeat(n)).join('  ')}` : '')).join('\n');
}

// ---------- main ----------
const started = new Date();
const meta = {
  date: started.toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1),
  natsServer: O.modes.includes('nats') ? await natsVersion() : undefined, options: { ...O, only: [...O.only] },
};
log(`xenops-ts bench: ${JSON.stringify(meta.options)}`);

// Real VMs (issue 13): only when asked for (`--only qemu`), as it needs QEMU and the tiny guest.
if (O.only.has('qemu')) {
  const q = await qemuBench({ log, runs: quick ? 1 : 3, parallel: num(opt['qemu-parallel'], 16, 4) });
  mkdirSync(O.outDir, { recursive: true });
  const file = join(O.outDir, `${started.toISOString().replace(/[:]/g, '-').replace(/\..*/, '')}-qemu.json`);
  writeFileSync(file, JSON.stringify({ meta, qemu: q }, null, 2));
  const rows = [
    ['figure (median)', 'raw QEMU', 'through xenopsd'],
    ['boot to ready line ms', q.raw.spawnToReadyMs, `${q.service.startToReadyMs} (${q.startToReadyVsRaw}×)`],
    ['suspend ms', q.raw.suspendMs, q.service.suspendMs],
    ['resume, image loaded ms', q.raw.resumeLoadedMs, q.service.resumeLoadedMs],
    ['resume to next heartbeat ms', q.raw.resumeToHeartbeatMs, q.service.resumeToHeartbeatMs],
    [`${q.parallel.vms} VMs started at once: all ready ms`, '', q.parallel.allReadyMs],
    ['agent RSS per running VM MiB', '', `${q.agentRssMiB.perRunningVm} (${q.agentRssMiB.idle} → ${q.agentRssMiB.running})`],
  ];
  process.stdout.write(rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(40) : String(c).padStart(16))).join('  ')).join('\n') + '\n');
  log(`results: ${file}`);
  O.only.delete('qemu');
  if (O.only.size === 0) process.exit(0);
}
// Live migration of a real VM (issue 14): only when asked for (`--only qemu-migrate`), on NATS.
if (O.only.has('qemu-migrate')) {
  const q = await qemuMigrations({ natsUrl: O.natsUrl, log, runs: quick ? 1 : 3 });
  mkdirSync(O.outDir, { recursive: true });
  const file = join(O.outDir, `${started.toISOString().replace(/[:]/g, '-').replace(/\..*/, '')}-qemu-migrate.json`);
  writeFileSync(file, JSON.stringify({ meta, qemuMigrate: q }, null, 2));
  const rows = [
    [`live migration, ${q.memoryMiB} MiB guest (median of ${q.runs})`, 'raw QEMU', 'through xenopsd'],
    ['total ms (call to task end; raw: migrate to completed)', q.raw.totalMs, `${q.service.taskMs} (${q.taskVsRaw}×)`],
    ['  of which QEMU migration ms', q.raw.totalMs, q.service.qemuTotalMs],
    ['downtime ms (source stopped to destination running)', q.raw.switchOverMs, `${q.service.switchOverMs} (${q.downtimeVsRaw}×)`],
    ["  of which QEMU's own downtime ms", q.raw.qemuDowntimeMs, q.service.qemuDowntimeMs],
  ];
  process.stdout.write(rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(56) : String(c).padStart(16))).join('  ')).join('\n') + '\n');
  log(`results: ${file}`);
  O.only.delete('qemu-migrate');
  if (O.only.size === 0) process.exit(0);
}
const hardStop = setTimeout(() => {
  log('bench exceeded its overall time bound: exiting');
  process.exit(3);
}, O.limitMs * 12 * O.modes.length + 600_000);
hardStop.unref();

const results = [];
for (const mode of O.modes) results.push(await runMode(mode));
let peer;
if (O.only.has('peer')) {
  log(`peer: libvirt test driver, ${O.vms} domains`);
  peer = await peerRun(O.vms, O.clients, log, O.limitMs);
}
let floor;
if (O.only.has('peer') || O.only.has('floor')) {
  log('floor: a bare node:http JSON-RPC server driven by the same client');
  floor = await httpFloor({ clients: O.clients }).catch((e) => ({ error: String(e.message ?? e) }));
  if (floor.error) log(`  floor failed: ${floor.error}`);
  else log(`  ${floor.requestsPerSecond.toFixed(0)} req/s, server ${floor.serverCpuMsPerRequest.toFixed(3)} ms CPU per request`);
}
let profiles;
mkdirSync(O.outDir, { recursive: true });
const stamp = started.toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
if (O.profile) {
  profiles = {};
  for (const mode of O.modes) profiles[mode] = await profileMode(mode, join(O.outDir, `profiles-${stamp}`)).catch((e) => ({ error: e.message }));
}
const out = join(O.outDir, `${stamp}.json`);
writeFileSync(out, JSON.stringify({ meta, results, peer, floor, profiles }, null, 2));
process.stdout.write(table(results, peer, floor) + '\n');
if (peer?.virsh) for (const r of results) if (r.cycle) process.stdout.write(`${r.mode}: ${(r.cycle.opsPerSecond / peer.virsh.opsPerSecond).toFixed(2)}× libvirt virsh batch, ${peer.python1 ? (r.cycle.opsPerSecond / peer.python1.opsPerSecond).toFixed(2) + '× python3-libvirt (1 thread)' : ''}\n`);
if (profiles)
  for (const [m, p] of Object.entries(profiles)) {
    process.stdout.write(`\nprofile ${m} (cycle ${f(p.opsPerSecond)} ops/s, busy ${p.busyMs} ms, idle ${p.idleMs} ms): top self time\n`);
    for (const x of p.functions?.slice(0, 12) ?? []) process.stdout.write(`  ${String(x.pct).padStart(5)}%  ${x.name}\n`);
  }
log(`results: ${out}`);
// The table and the JSON are written either way; a mode that failed makes the run fail.
const cycleErrors = (r) => [r.cycle, r.cycleWide, r.cycleManyVms, r.cycleLoaded, r.split].reduce((n, c) => n + (c?.errors ?? 0), 0);
for (const r of results) if (cycleErrors(r) && !r.error) r.error = `${cycleErrors(r)} VMs of its cycles failed`;
const failedModes = results.filter((r) => r.error).map((r) => r.mode);
if (failedModes.length) log(`failed: ${failedModes.join(', ')} (see the lines above)`);
process.exit(failedModes.length ? 1 : 0);
