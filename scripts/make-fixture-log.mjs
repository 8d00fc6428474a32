#!/usr/bin/env node
/**
 * Writes the schema-evolution fixture (issue 5 item 6):
 *   test/fixtures/log-v1.jsonl          one line per log message {"seq","stream","data":"<base64>"}
 *   test/fixtures/log-v1.expected.json  what folding that log must give (from the service's answers)
 *
 * It starts the BUILT embedded service (`npm run build` first) on a temp dir, drives a session that
 * reaches every event type it can, reads VM.list / Task.list / device lists, stops the service,
 * and reads the SQLite log directly.
 *
 * The committed fixture is written once, by log schema version 1. Do NOT rerun this to make a
 * failing test/e2e/schema-evolution.test.ts pass: that failure means a schema change broke the
 * decoding of old events. Write a log-v2 fixture next to it instead when a new version ships.
 *
 * Usage: node scripts/make-fixture-log.mjs [--out test/fixtures] [--force]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'packages/xenopsd/dist/bin/xenopsd.js');
const CORE = path.join(ROOT, 'packages/core/dist/index.js');
const HOST_ID = 'fixture-host';
const args = process.argv.slice(2);
const outDir = path.resolve(args.includes('--out') ? args[args.indexOf('--out') + 1] : path.join(ROOT, 'test/fixtures'));
const force = args.includes('--force');
const jsonlPath = path.join(outDir, 'log-v1.jsonl');
const expectedPath = path.join(outDir, 'log-v1.expected.json');

if (!existsSync(BIN) || !existsSync(CORE)) throw new Error('build first: npm run build');
if (!force && (existsSync(jsonlPath) || existsSync(expectedPath))) {
  console.error(`${jsonlPath} exists. The v1 fixture must never be regenerated to make a test pass; use --force only if you know why.`);
  process.exit(2);
}

const dataDir = mkdtempSync(path.join('/tmp', 'xfix-'));
const log = (s) => process.stderr.write(`make-fixture-log: ${s}\n`);

// --------------------------------------------------------------------------------------------
// Service and RPC

function startService() {
  const proc = spawn(process.execPath, [BIN, '--data-dir', dataDir, '--host-id', HOST_ID, '--listen', '127.0.0.1:0', '--socket', 'off'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 20000);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (c) => {
      stderr += c;
      const m = /ready:.*serving http:\/\/([^\s:]+):(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: `http://${m[1]}:${m[2]}` });
      }
    });
    proc.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
}

let rpcId = 1;
let URL_ = '';
function call(method, params, dbg = 'fixture') {
  const id = rpcId++;
  const body = JSON.stringify({ method, params: [{ debug_info: dbg, ...params }], id });
  const u = new URL(URL_);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: Number(u.port), method: 'POST', path: '/', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const env = JSON.parse(text);
          resolve(env.error === null ? { ok: true, value: env.result } : { ok: false, error: env.error });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
async function ok(method, params, dbg) {
  const o = await call(method, params, dbg);
  if (!o.ok) throw new Error(`${method} ${JSON.stringify(params)}: ${JSON.stringify(o.error)}`);
  return o.value;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitTask(id, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await ok('Task.stat', { id });
    if (t.state[0] !== 'Pending') return t;
    if (Date.now() > deadline) throw new Error(`task ${id} still pending: ${JSON.stringify(t)}`);
    await sleep(10);
  }
}
/** Submits a T call and waits; `want` is the expected end ('Completed' / 'Failed'). */
async function run(method, params, want = 'Completed', dbg) {
  const id = await ok(method, params, dbg);
  const t = await waitTask(id);
  if (want && t.state[0] !== want) throw new Error(`${method} ${JSON.stringify(params)}: task ${id} ended ${JSON.stringify(t.state)}, wanted ${want}`);
  return t;
}
async function power(vm) {
  return (await ok('VM.stat', { id: vm }))[1].power_state;
}
async function waitPower(vm, want) {
  const deadline = Date.now() + 20000;
  while ((await power(vm)) !== want) {
    if (Date.now() > deadline) throw new Error(`${vm} never ${want}`);
    await sleep(20);
  }
}
async function waitNoPending() {
  const deadline = Date.now() + 20000;
  for (;;) {
    const tasks = await ok('Task.list', {});
    if (tasks.every((t) => t.state[0] !== 'Pending')) return;
    if (Date.now() > deadline) throw new Error('tasks still pending');
    await sleep(20);
  }
}

function vmConfig(id, name, over = {}) {
  return {
    id,
    name,
    ssidref: 0,
    xsdata: { 'vm-data/fixture': '1' },
    platformdata: { acpi: '1' },
    bios_strings: {},
    ty: ['HVM', { boot_order: 'cd' }],
    suppress_spurious_page_faults: false,
    memory_static_max: 1073741824,
    memory_dynamic_max: 1073741824,
    memory_dynamic_min: 536870912,
    vcpu_max: 2,
    vcpus: 2,
    scheduler_params: { priority: [256, 0], affinity: [] },
    on_crash: ['Shutdown'],
    on_shutdown: ['Shutdown'],
    on_reboot: ['Start'],
    pci_msitranslate: true,
    pci_power_mgmt: false,
    ...over,
  };
}
const pvTy = ['PV', { boot: ['Direct', { kernel: '/boot/vmlinuz', cmdline: 'root=/dev/xvda1', ramdisk: [] }], framebuffer: false, vncterm: true }];

// --------------------------------------------------------------------------------------------
// The session: every event type reachable from the API

async function session() {
  const A = 'fixture-vm-a-0000-hvm'; // HVM, devices of every kind, the full lifecycle; ends Running
  const B = 'fixture-vm-b-0001-pv'; // PV, guest modes and a guest crash; ends Halted
  const C = 'fixture-vm-c-0002'; // cancelled start, then suspended to a VDI; ends Suspended
  const D = 'fixture-vm-d-0003'; // added with devices, then removed
  const E = 'fixture-vm-e-0004'; // started, paused; ends Paused
  await ok('VM.add', { vm: vmConfig(A, 'web01') });
  await ok('VM.add', { vm: vmConfig(B, 'pv01', { ty: pvTy, vcpu_max: 1, vcpus: 1 }) });
  await ok('VM.add', { vm: vmConfig(C, 'db01') });
  await ok('VM.add', { vm: vmConfig(D, 'gone01') });
  await ok('VM.add', { vm: vmConfig(E, 'idle01') });
  await ok('VM.add', { vm: vmConfig(A, 'web01-renamed') }); // overwrite

  // Devices of every kind (VGPU and VUSB are stored only).
  await ok('VBD.add', { vbd: { id: [A, 'xvda'], position: ['Xen', 0, 0], backend: ['VDI', 'sr/vdi-root'] } });
  await ok('VBD.add', { vbd: { id: [A, 'xvdb'], backend: ['Local', '/dev/null'], qos: ['Ionice', ['BestEffort', 'Normal']] } });
  await ok('VBD.add', { vbd: { id: [A, 'hdd'], mode: 'ReadOnly', ty: 'CDROM', backend: ['VDI', 'sr/iso'] } });
  await ok('VIF.add', { vif: { id: [A, 'vif0'], position: 0, mac: '' } });
  await ok('VIF.add', { vif: { id: [A, 'vif1'], position: 1, mac: 'random', locking_mode: ['Locked', { ipv4: ['10.0.0.2'], ipv6: [] }] } });
  await ok('PCI.add', { pci: { id: [A, 'gpu0'], position: 0, address: { domain: 0, bus: 3, dev: 0, fn: 0 } } });
  await ok('VGPU.add', { vgpu: { id: [A, 'vgpu0'], position: 0, physical_pci_address: { domain: 0, bus: 0, dev: 0, fn: 0 }, implementation: 'Empty' } });
  await ok('VUSB.add', { vusb: { id: [A, 'usb0'], hostbus: '1', hostport: '2', version: '2.0', path: '/dev/bus/usb/001/002', speed: 480.5 } });
  await ok('VBD.add', { vbd: { id: [D, 'xvda'], backend: ['VDI', 'sr/vdi-d'] } });
  await ok('VIF.add', { vif: { id: [D, 'vif0'] } });
  await ok('VBD.add', { vbd: { id: [A, 'xvdz'] } });
  await ok('VBD.remove', { id: [A, 'xvdz'] });

  // Lifecycle of A: start (plug everything), unpause, pause, unpause.
  await run('VM.start', { id: A, paused: false });
  await run('VM.unpause', { id: A });
  await run('VM.pause', { id: A });
  await run('VM.unpause', { id: A });
  // Live setters.
  await run('VM.set_vcpus', { id: A, vcpus: 1 });
  await run('VM.set_shadow_multiplier', { id: A, multiplier: 1.5 });
  await run('VM.set_memory_dynamic_range', { id: A, minimum: 536870912, maximum: 805306368 });
  await run('VM.set_xsdata', { id: A, xsdata: { 'vm-data/k': 'v', 'vm-data/fixture': '2' } });
  // Device operations on the live domain.
  await run('VBD.eject', { id: [A, 'hdd'] });
  await run('VBD.insert', { id: [A, 'hdd'], disk: ['VDI', 'sr/iso2'] });
  await run('VBD.unplug', { id: [A, 'xvdb'], force: false });
  await run('VBD.plug', { id: [A, 'xvdb'] });
  await run('VIF.set_carrier', { id: [A, 'vif1'], carrier: false });
  await run('VIF.unplug', { id: [A, 'vif1'], force: false });
  await run('VIF.plug', { id: [A, 'vif1'] });
  await run('VIF.move', { id: [A, 'vif1'], network: ['Local', 'xenbr1'] });
  // Reboot (clean, acknowledged), then suspend to a Local image file and resume.
  await run('VM.reboot', { id: A, delay: 5 });
  await run('VM.suspend', { id: A, suspend_vdi: ['Local', path.join(dataDir, 'suspend-a.img')] });
  await run('VM.resume', { id: A, suspend_vdi: ['Local', path.join(dataDir, 'suspend-a.img')] });
  await run('VM.unpause', { id: A });
  await run('VM.run_script', { id: A, script: 'echo hi' });
  await run('VM.s3suspend', { id: A });

  // B: guest modes (DEBUG no-ack), a failed clean shutdown, then a guest crash (internal check).
  await run('VM.start', { id: B, paused: false });
  await run('VM.unpause', { id: B });
  await ok('DEBUG.trigger', { cmd: 'no-ack', args: [B] });
  await run('VM.shutdown', { id: B, delay: 0 }, 'Failed');
  await ok('DEBUG.trigger', { cmd: 'no-ack', args: [B, 'normal'] });
  await ok('DEBUG.trigger', { cmd: 'crash', args: [B] });
  await waitPower(B, 'Halted');
  await waitNoPending();

  // C: a start cancelled by a cancel trigger, a VM.delay cancelled by Task.cancel, then a start
  // and a suspend to a VDI.
  await ok('DEBUG.trigger', { cmd: 'set-cancel-trigger', args: ['fixture-cancel', '2'] });
  await run('VM.start', { id: C, paused: false }, 'Failed', 'fixture-cancel');
  await waitNoPending();
  const delay = await ok('VM.delay', { id: C, delay: 30 });
  await sleep(100);
  await ok('Task.cancel', { id: delay });
  const cancelled = await waitTask(delay);
  if (cancelled.state[0] !== 'Failed') throw new Error(`cancelled delay: ${JSON.stringify(cancelled.state)}`);
  await run('VM.start', { id: C, paused: false });
  await run('VM.suspend', { id: C, suspend_vdi: ['VDI', 'sr/suspend-c'] });

  // E: started and paused; a task that destroys itself when it finishes.
  await run('VM.start', { id: E, paused: false });
  const dof = await ok('VM.delay', { id: E, delay: 0.3 });
  await ok('Task.destroy_on_finish', { id: dof });
  for (let i = 0; i < 200 && (await call('Task.stat', { id: dof })).ok; i++) await sleep(20);

  // D: removed with its devices.
  await ok('VM.remove', { id: D });

  // UPDATES barriers and refresh.
  await ok('UPDATES.inject_barrier', { vm_id: A, id: 7 });
  await ok('UPDATES.inject_barrier', { vm_id: E, id: 8 });
  await ok('UPDATES.refresh_vm', { id: A });
  await ok('UPDATES.remove_barrier', { id: 7 });

  // Host settings.
  await ok('HOST.set_worker_pool_size', { pool_size: 8 });

  // Task.destroy of a finished task.
  const doomed = await ok('VM.s3resume', { id: A });
  await waitTask(doomed);
  await ok('Task.destroy', { id: doomed });

  await waitNoPending();
}

// --------------------------------------------------------------------------------------------

const KINDS = ['VBD', 'VIF', 'PCI', 'VGPU', 'VUSB'];

async function expectedState() {
  const vms = await ok('VM.list', {});
  const tasks = await ok('Task.list', {});
  const out = {};
  for (const [cfg, st] of vms) {
    const devices = {};
    for (const k of KINDS) {
      const list = await ok(`${k}.list`, { id: cfg.id });
      devices[k] = Object.fromEntries(list.map(([c, s]) => [c.id[1], { plugged: s.plugged === true }]));
    }
    out[cfg.id] = { name: cfg.name, power_state: st.power_state, domids: st.domids, devices };
  }
  const byStatus = { Pending: 0, Completed: 0, Failed: 0 };
  const taskStatus = {};
  for (const t of tasks) {
    byStatus[t.state[0]] = (byStatus[t.state[0]] ?? 0) + 1;
    taskStatus[t.id] = t.state[0];
  }
  return { vms: out, tasks: { byStatus, ids: taskStatus }, head: await ok('UPDATES.last_id', {}) };
}

const { proc, url } = await startService();
URL_ = url;
let expected;
try {
  await session();
  expected = await expectedState();
} finally {
  proc.kill('SIGTERM');
  await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
}

const db = new Database(path.join(dataDir, 'xenops.db'), { readonly: true });
const rows = db.prepare('SELECT seq, stream, data FROM events ORDER BY seq').all();
db.close();
rows.forEach((r, i) => {
  if (r.seq !== i + 1) throw new Error(`the log has a gap at seq ${i + 1} (found ${r.seq}): the fixture must be contiguous`);
});

// Event types per message, from this version's decoder: the test checks later versions decode
// the same messages to the same types (an event silently skipped would show here).
const core = await import(CORE);
const typeCounts = {};
let events = 0;
for (const r of rows) {
  for (const e of core.decodeBatch(r.seq, new Uint8Array(r.data))) {
    typeCounts[e.body.type] = (typeCounts[e.body.type] ?? 0) + 1;
    events++;
  }
}

mkdirSync(outDir, { recursive: true });
writeFileSync(jsonlPath, rows.map((r) => JSON.stringify({ seq: r.seq, stream: r.stream, data: Buffer.from(r.data).toString('base64') })).join('\n') + '\n');
writeFileSync(
  expectedPath,
  JSON.stringify(
    {
      schema: 1,
      note: 'Written by scripts/make-fixture-log.mjs with log schema version 1. Never regenerate to make a failing test pass.',
      hostId: HOST_ID,
      messages: rows.length,
      events,
      eventTypes: Object.fromEntries(Object.entries(typeCounts).sort(([a], [b]) => (a < b ? -1 : 1))),
      ...expected,
    },
    null,
    2,
  ) + '\n',
);
rmSync(dataDir, { recursive: true, force: true });
log(`${rows.length} messages, ${events} events, ${Object.keys(typeCounts).length} event types -> ${path.relative(process.cwd(), jsonlPath)}`);
log(`event types: ${Object.keys(typeCounts).sort().join(' ')}`);
