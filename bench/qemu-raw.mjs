#!/usr/bin/env node
// Raw QEMU figures of the tiny guest under TCG, with the QEMU layer alone (no service): spawn →
// QMP ready, boot to the ready line, QMP round trip, suspend (stop + migrate to a file), resume
// (a new process loading it, to the next heartbeat), ACPI power-off → exit. The reference that
// the service's figures (issue 13, item 8) are to be compared with. Needs `npm run build` and
// `npm run guest-image`. Usage: node bench/qemu-raw.mjs [--runs N] [--memory MiB,MiB]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { qemu } from '../packages/actors/dist/index.js';

const { QemuProcess, SerialConsole, guestImage, tinyGuestArgs } = qemu;

const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
const finished = (e) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function start(dir, image, memoryMiB, extra = []) {
  const p = await QemuProcess.start({ dir, args: tinyGuestArgs(image, { memoryMiB, extra }) });
  const c = await SerialConsole.connect(p.paths.serial);
  await p.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  return { p, c };
}

/** One boot, suspend, resume and power-off of the tiny guest with `memoryMiB` of RAM. */
export async function measureOnce(image, memoryMiB, root) {
  const r = {};
  let t = performance.now();
  const a = await start(join(root, 'a'), image, memoryMiB);
  r.spawnToQmpMs = a.p.startupMs;
  await a.p.qmp.execute('cont');
  await a.c.waitForLine(/^xenops-guest ready$/, { timeoutMs: 120_000 });
  r.spawnToReadyMs = performance.now() - t;
  await a.c.waitForLine(/heartbeat/, { timeoutMs: 10_000 });

  const rtt = [];
  for (let i = 0; i < 200; i++) {
    const s = performance.now();
    await a.p.qmp.execute('query-status');
    rtt.push(performance.now() - s);
  }
  r.qmpRoundTripMs = median(rtt);

  const image_ = join(root, 'suspend.img');
  await a.p.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 2 ** 30 });
  t = performance.now();
  await a.p.qmp.execute('stop');
  const saved = a.p.qmp.waitForEvent('MIGRATION', { predicate: finished, timeoutMs: 120_000 });
  await a.p.qmp.execute('migrate', { uri: `exec:cat > ${quote(image_)}` });
  if ((await saved).data?.status !== 'completed') throw new Error('suspend failed');
  r.suspendMs = performance.now() - t;
  r.suspendImageMiB = statSync(image_).size / 2 ** 20;
  await a.c.close();
  await a.p.stop();

  t = performance.now();
  const b = await start(join(root, 'b'), image, memoryMiB, ['-incoming', 'defer']);
  const loaded = b.p.qmp.waitForEvent('MIGRATION', { predicate: finished, timeoutMs: 120_000 });
  await b.p.qmp.execute('migrate-incoming', { uri: `exec:cat ${quote(image_)}` });
  if ((await loaded).data?.status !== 'completed') throw new Error('resume failed');
  r.resumeLoadedMs = performance.now() - t;
  await b.p.qmp.execute('cont');
  r.resumeRunningMs = performance.now() - t;
  await b.c.waitForLine(/heartbeat/, { timeoutMs: 20_000 });
  r.resumeToHeartbeatMs = performance.now() - t;

  t = performance.now();
  await b.p.qmp.execute('system_powerdown');
  await b.p.exited();
  r.powerdownToExitMs = performance.now() - t;
  await b.c.close();
  return r;
}

async function main() {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, memory: { type: 'string', default: '128,256' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log('usage: node bench/qemu-raw.mjs [--runs N] [--memory MiB,MiB]');
    return;
  }
  const image = guestImage();
  const runs = Number(values.runs);
  const out = { load1Before: loadavg()[0], results: {} };
  for (const memoryMiB of values.memory.split(',').map(Number)) {
    const all = [];
    for (let i = 0; i < runs; i++) {
      const root = mkdtempSync(join(tmpdir(), 'xq-bench-'));
      try {
        all.push(await measureOnce(image, memoryMiB, root));
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
      process.stderr.write(`  ${memoryMiB} MiB run ${i + 1}/${runs}: ${JSON.stringify(all.at(-1), (_, v) => (typeof v === 'number' ? +v.toFixed(1) : v))}\n`);
    }
    out.results[`${memoryMiB}MiB`] = Object.fromEntries(Object.keys(all[0]).map((k) => [k, +median(all.map((r) => r[k])).toFixed(1)]));
  }
  out.load1After = loadavg()[0];
  console.log(JSON.stringify(out, null, 2));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
