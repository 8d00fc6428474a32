// The QEMU workload of the bench (issue 13, item 8): in one run, the raw QEMU boot of the tiny
// guest (QEMU and the QEMU layer alone: spawn → ready line) against VM.start → ready line through
// the service (xenopsd --backend qemu, embedded store), suspend and resume through the service
// against raw QMP, N VMs started in parallel, and the agent's memory per running VM.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemu } from '../../packages/actors/dist/index.js';
import { measureOnce } from '../qemu-raw.mjs';
import { Rpc, TaskWatcher } from './rpc.mjs';
import { rssMiB, startService } from './service.mjs';

const MIB = 1048576;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x) => +x.toFixed(1);

/** The tiny guest's VM record (direct kernel boot, PVH) with `memoryMiB` of RAM. */
export function tinyVm(id, image, memoryMiB) {
  return {
    id, name: id, ssidref: 0, xsdata: {}, platformdata: {}, bios_strings: {},
    ty: ['PVH', { boot: ['Direct', { kernel: image.kernel, cmdline: image.cmdline, ramdisk: image.initrd }] }],
    suppress_spurious_page_faults: false,
    memory_static_max: memoryMiB * MIB, memory_dynamic_max: memoryMiB * MIB, memory_dynamic_min: memoryMiB * MIB,
    vcpu_max: 1, vcpus: 1, scheduler_params: { affinity: [] },
    on_crash: ['Shutdown'], on_shutdown: ['Shutdown'], on_reboot: ['Start'], pci_msitranslate: true, pci_power_mgmt: false,
  };
}

/** Waits for `re` in the VM's serial.log after byte `from`. */
async function serialLine(dataDir, vm, re, from, timeoutMs = 300_000) {
  const log = join(dataDir, 'qemu', vm, 'serial.log');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (re.test(readFileSync(log).subarray(from).toString('utf8'))) return;
    } catch {
      /* not yet written */
    }
    if (Date.now() > deadline) throw new Error(`${vm}: no ${re} in serial.log within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const logSize = (dataDir, vm) => {
  try {
    return statSync(join(dataDir, 'qemu', vm, 'serial.log')).size;
  } catch {
    return 0;
  }
};

export async function qemuBench({ log, runs = 3, parallel = 16, memoryMiB = 160 }) {
  const image = qemu.guestImage();
  const out = { memoryMiB, runs, parallel, load1Before: round(loadavg()[0]) };

  // Raw QEMU: the reference.
  const raw = [];
  for (let i = 0; i < runs; i++) {
    const root = mkdtempSync(join(tmpdir(), 'xq-bench-'));
    try {
      raw.push(await measureOnce(image, memoryMiB, root));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    log(`qemu raw run ${i + 1}/${runs}: ready in ${raw.at(-1).spawnToReadyMs.toFixed(0)} ms`);
  }
  out.raw = Object.fromEntries(Object.keys(raw[0]).map((k) => [k, round(median(raw.map((r) => r[k])))]));

  // Through the service.
  const dataDir = mkdtempSync(join(tmpdir(), 'xq-bench-svc-'));
  const svc = await startService({ mode: 'embedded', dataDir, extraArgs: ['--backend', 'qemu', '--qemu-network', 'user'] }).then((s) => s.ready);
  const rpc = new Rpc(svc.url);
  const watcher = new TaskWatcher(rpc);
  await watcher.start();
  const run = async (method, args) => {
    const t = await watcher.wait(await rpc.call(method, args));
    return t;
  };
  try {
    const rssIdle = rssMiB(svc.pid).rss;
    const service = [];
    for (let i = 0; i < runs; i++) {
      const id = `bench-${i}`;
      await rpc.call('VM.add', { vm: tinyVm(id, image, memoryMiB) });
      const r = {};
      let t = performance.now();
      await run('VM.start', { id, paused: false });
      await run('VM.unpause', { id });
      await serialLine(dataDir, id, /xenops-guest ready/, 0);
      r.startToReadyMs = performance.now() - t;
      await serialLine(dataDir, id, /heartbeat/, 0);
      const image_ = join(dataDir, `suspend-${i}.img`);
      t = performance.now();
      await run('VM.suspend', { id, suspend_vdi: ['Local', image_] });
      r.suspendMs = performance.now() - t;
      const from = logSize(dataDir, id);
      t = performance.now();
      await run('VM.resume', { id, suspend_vdi: ['Local', image_] });
      r.resumeLoadedMs = performance.now() - t;
      await run('VM.unpause', { id });
      r.resumeRunningMs = performance.now() - t;
      await serialLine(dataDir, id, /heartbeat/, from, 30_000);
      r.resumeToHeartbeatMs = performance.now() - t;
      t = performance.now();
      await run('VM.shutdown', { id, delay: 30 });
      r.cleanShutdownMs = performance.now() - t;
      service.push(r);
      log(`qemu service run ${i + 1}/${runs}: VM.start → ready in ${r.startToReadyMs.toFixed(0)} ms`);
    }
    out.service = Object.fromEntries(Object.keys(service[0]).map((k) => [k, round(median(service.map((r) => r[k])))]));
    out.startToReadyVsRaw = round(out.service.startToReadyMs / out.raw.spawnToReadyMs * 100) / 100;

    // N VMs started at once, each to its ready line.
    const ids = Array.from({ length: parallel }, (_, i) => `par-${i}`);
    for (const id of ids) await rpc.call('VM.add', { vm: tinyVm(id, image, memoryMiB) });
    const t0 = performance.now();
    const readyAt = await Promise.all(
      ids.map(async (id) => {
        await run('VM.start', { id, paused: false });
        await run('VM.unpause', { id });
        await serialLine(dataDir, id, /xenops-guest ready/, 0, 600_000);
        return performance.now() - t0;
      }),
    );
    out.parallel = { vms: parallel, allReadyMs: round(Math.max(...readyAt)), medianReadyMs: round(median(readyAt)) };
    const rssRunning = rssMiB(svc.pid).rss;
    out.agentRssMiB = { idle: round(rssIdle), running: round(rssRunning), perRunningVm: round((rssRunning - rssIdle) / parallel) };
    log(`qemu: ${parallel} VMs ready in ${out.parallel.allReadyMs.toFixed(0)} ms; agent RSS ${rssIdle.toFixed(0)} → ${rssRunning.toFixed(0)} MiB`);
    await Promise.all(ids.map((id) => run('VM.shutdown', { id })));
  } finally {
    await watcher.stop();
    rpc.close();
    await svc.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  out.load1After = round(loadavg()[0]);
  return out;
}
