#!/usr/bin/env node
// CI's check that `npm run bench` still works: runs the bench with --quick (≈ 40 s, both stores)
// and checks that every workload produced a figure. It checks that the bench runs, not how fast
// the service is: speed is read off `npm run bench`, never asserted.
// usage: node bench/smoke.mjs   (prints one line per check, then "bench smoke: N passed, M failed")
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'xenops-bench-smoke-'));
const checks = [];
const check = (name, ok, detail = '') => checks.push({ name, ok: Boolean(ok), detail });

try {
  const nats = process.env.XENOPS_TEST_NATS ? ['--nats', process.env.XENOPS_TEST_NATS] : [];
  const run = spawnSync(process.execPath, [join(ROOT, 'bench/run.mjs'), '--quick', '--out', out, ...nats], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 600_000,
  });
  check('the bench exits 0', run.status === 0, `status ${run.status}${run.error ? `, ${run.error.message}` : ''}\n${(run.stderr ?? '').slice(-2000)}`);
  check('the bench prints its table', /cycle ops\/s \(5 ops\/VM, \d+ clients\)/.test(run.stdout ?? '') && /vs libvirt virsh batch/.test(run.stdout ?? ''));
  const files = readdirSync(out).filter((f) => f.endsWith('.json'));
  check('the bench writes one JSON result', files.length === 1, files.join(', '));
  if (files.length === 1) {
    const r = JSON.parse(readFileSync(join(out, files[0]), 'utf8'));
    const o = r.meta.options;
    const positive = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
    for (const mode of ['embedded', 'nats']) {
      const m = r.results.find((x) => x.mode === mode);
      check(`${mode}: ran without error`, m && !m.error, m?.error ?? 'no result');
      if (!m) continue;
      check(`${mode}: cycle of ${o.vms} VMs with a rate and CPU per op`, m.cycle?.vms === o.vms && positive(m.cycle.opsPerSecond) && positive(m.cycle.serviceCpuMsPerOp));
      check(`${mode}: the cycle again with ${o.wideClients} clients, without an error`, m.cycleWide?.vms === o.vms && m.cycleWide.errors === 0 && positive(m.cycleWide.opsPerSecond));
      check(`${mode}: the cycle again with ${o.readVms} more VMs registered`, m.cycleManyVms?.vms === o.vms && positive(m.cycleManyVms.opsPerSecond));
      check(`${mode}: VM.stat latency idle and loaded`, positive(m.readIdle?.p99) && positive(m.readLoaded?.p99));
      check(`${mode}: UPDATES wake-up latency`, positive(m.eventsIdle?.wake?.p99));
      check(`${mode}: replay verified equal to the read model`, m.replay?.ok === true && m.replay.events >= o.replayEvents && positive(m.replay.eventsPerSecond));
      check(`${mode}: restart answered VM.list with every VM`, m.restart?.vms === o.readVms + 1 && positive(m.restart.seconds));
      check(`${mode}: RSS measured`, positive(m.memory?.rssMiB));
      check(`${mode}: simulator migrations with a rate, none failed, no invariant violated`, positive(m.migrate?.migrationsPerSecond) && m.migrate.failed === 0 && m.migrate.invariantViolations === 0, JSON.stringify(m.migrate ?? {}).slice(0, 200));
      if (mode === 'nats') check('nats: split cycle (gateway + agent processes)', m.split?.vms === o.vms && positive(m.split.opsPerSecond));
    }
    check('the floor: a bare node:http server measured with the same client', positive(r.floor?.requestsPerSecond) && positive(r.floor.serverCpuMsPerRequest), JSON.stringify(r.floor ?? {}).slice(0, 200));
    const peer = r.peer ?? {};
    check('libvirt peer measured, or said to be skipped', positive(peer.virsh?.opsPerSecond) || /not installed/.test(peer.skipped ?? ''), JSON.stringify(peer).slice(0, 200));
  }
} catch (e) {
  check('the smoke check itself ran', false, e.stack ?? String(e));
} finally {
  rmSync(out, { recursive: true, force: true });
}

for (const c of checks) process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.ok || !c.detail ? '' : `\n     ${c.detail}`}\n`);
const failed = checks.filter((c) => !c.ok).length;
process.stdout.write(`bench smoke: ${checks.length - failed} passed, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
