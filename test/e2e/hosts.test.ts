/**
 * Many hosts on one NATS prefix (API.md §9.7, issue 14 items 1, 2, 3 and 7), with real processes:
 * three agents (h1, h2, h3) and two gateways (host h1, placement local; host h2, placement
 * least-loaded), all with `--host-down-after-s 5` so that Down shows in seconds. HOST.list Up and
 * Down, placement by both policies and by an explicit host, the placement errors, a gateway scoped
 * to one host, and the task reaper's lease handed on when its holder is killed with SIGKILL. Then
 * embedded mode: one host.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X, until, waitTask, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, REPO_ROOT, spawnXenopsd, uniquePrefix, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

const TIB = 1024 ** 4;
const GIB = 1024 ** 3;
const XENOPS_BIN = path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js');

interface HostRecord {
  id: string;
  backend: string;
  version: string;
  state: string;
  started_at: number;
  last_seen: number;
  addresses: string[];
  cpus: number;
  memory_total: number;
  memory_free: number;
  vms: string[];
  running: number;
}

const hostList = (c: RpcClient) => c.ok<HostRecord[]>('HOST.list', X());
const hostOf = async (c: RpcClient, vm: string) => (await hostList(c)).find((h) => h.vms.includes(vm))?.id;

function xenops(url: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [XENOPS_BIN, '--url', url, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('NATS: three hosts, two gateways', () => {
  const prefix = uniquePrefix('hosts');
  const down = ['--host-down-after-s', '5'];
  const agents: Record<string, Xenopsd> = {};
  let local: Xenopsd;
  let leastLoaded: Xenopsd;
  let a: RpcClient;
  let b: RpcClient;

  beforeAll(async () => {
    // The first agent creates the prefix's resources; the others then start side by side.
    agents.h1 = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h1', extraArgs: ['--socket', 'off', '--listen', 'off'] });
    const [h2, h3, g1, g2] = await Promise.all([
      spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h2', extraArgs: ['--socket', 'off', '--listen', 'off'] }),
      spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h3', extraArgs: ['--socket', 'off', '--listen', 'off'] }),
      spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h1', extraArgs: [...down, '--placement', 'local'] }),
      spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h2', extraArgs: [...down, '--placement', 'least-loaded'] }),
    ]);
    agents.h2 = h2;
    agents.h3 = h3;
    local = g1;
    leastLoaded = g2;
    a = local.client();
    b = leastLoaded.client();
  });

  const addVm = async (c: RpcClient, tag: string, memory = GIB) => {
    const id = vmId(tag);
    await c.ok('VM.add', X({ vm: xenopsdVm(id, { memory_static_max: memory, memory_dynamic_max: memory, memory_dynamic_min: memory }) }));
    return id;
  };
  const start = async (c: RpcClient, id: string, host?: string) => waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false, ...(host ? { host } : {}) })));

  it('HOST.list: every agent registered, Up, with its backend, version and memory', async () => {
    const hosts = await until('three hosts Up', async () => {
      const l = await hostList(a);
      return l.filter((h) => h.state === 'Up').length === 3 ? l : undefined;
    }, 10_000);
    expect(hosts.map((h) => h.id)).toEqual(['h1', 'h2', 'h3']);
    const now = Date.now() / 1000;
    for (const h of hosts) {
      expect(h).toMatchObject({ backend: 'simulator', version: '0.1.0', state: 'Up', memory_total: TIB, memory_free: TIB, vms: [], running: 0, cpus: 0 });
      expect(Math.abs(now - h.last_seen)).toBeLessThan(5);
      expect(h.started_at).toBeLessThanOrEqual(h.last_seen);
    }
    // Both gateways serve the same cluster-wide list.
    expect((await hostList(b)).map((h) => [h.id, h.state])).toEqual(hosts.map((h) => [h.id, h.state]));
  });

  it('placement: local puts an unowned VM on the gateway\u2019s host, an explicit host wins, least-loaded picks the emptiest', async () => {
    const onLocal = await addVm(a, 'local');
    expect((await start(a, onLocal)).state[0]).toBe('Completed');
    expect(await hostOf(a, onLocal)).toBe('h1');
    expect(local.stderr).toMatch(new RegExp(`placement: VM.start of VM ${onLocal} on host h1 \\(policy local`));

    const explicit = await addVm(a, 'explicit');
    expect((await start(a, explicit, 'h3')).state[0]).toBe('Completed');
    expect(await hostOf(a, explicit)).toBe('h3');
    expect(local.stderr).toMatch(new RegExp(`placement: VM.start of VM ${explicit} on host h3 \\(explicit host`));

    // h1 and h3 each run a 1 GiB VM: h2 has the most free memory.
    const spread = await addVm(b, 'spread');
    expect((await start(b, spread)).state[0]).toBe('Completed');
    expect(await hostOf(b, spread)).toBe('h2');
    expect(leastLoaded.stderr).toMatch(new RegExp(`placement: VM.start of VM ${spread} on host h2 \\(policy least-loaded`));
    const logged = await xenops(leastLoaded.url!, ['log', '--vm', spread]);
    expect(logged.stdout).toMatch(new RegExp(`start requested: task \\d+ queued on host h2 \\(placed: policy least-loaded: ${TIB} bytes free \\(VM needs ${GIB}\\), 0 running\\)`));
    const records = await hostList(b);
    for (const h of records) expect(h, h.id).toMatchObject({ memory_free: TIB - GIB, running: 1 });

    // Equal free memory and running counts: the host id decides, so placement is repeatable.
    const tie = await addVm(b, 'tie', 2 * GIB);
    expect((await start(b, tie)).state[0]).toBe('Completed');
    expect(await hostOf(b, tie)).toBe('h1');
  });

  it('placement errors: a VM no Up host fits fails Not_enough_memory <bytes>; an unknown host is not available', async () => {
    const huge = await addVm(b, 'huge', TIB);
    const t = await start(b, huge);
    expect(t.state).toEqual(['Failed', ['Not_enough_memory', TIB]]);
    expect(await hostOf(b, huge)).toBeUndefined();

    const lost = await addVm(a, 'nowhere');
    expect((await start(a, lost, 'no-such-host')).state).toEqual(['Failed', ['Internal_error', 'host no-such-host is not available']]);
    // The VM is untouched and can still be started.
    expect((await start(a, lost, 'h2')).state[0]).toBe('Completed');
  });

  it('xenops: hosts lists the three, list shows each VM\u2019s host, start --host places', async () => {
    const url = local.url!;
    const id = await addVm(a, 'cli');
    const started = await xenops(url, ['start', id, '--host', 'h3']);
    expect(started.code, started.stderr).toBe(0);
    expect(await hostOf(a, id)).toBe('h3');
    const hosts = await xenops(url, ['hosts']);
    expect(hosts.stdout).toMatch(/^HOST\s+STATE\s+BACKEND/);
    for (const h of ['h1', 'h2', 'h3']) expect(hosts.stdout).toMatch(new RegExp(`^${h}\\s+Up\\s+simulator`, 'm'));
    // The placement and its reason are in the log, with the claim of the VM (§9.7).
    const history = await xenops(url, ['log', '--vm', id]);
    expect(history.stdout).toMatch(new RegExp(`VM ${id} start requested: task \\d+ queued on host h3 \\(placed: explicit host of the call\\)`));
    const list = JSON.parse((await xenops(url, ['list', '--json'])).stdout) as Array<{ id: string; host: string | null }>;
    expect(list.find((v) => v.id === id)?.host).toBe('h3');
    const table = (await xenops(url, ['list'])).stdout;
    expect(table).toMatch(new RegExp(`^${id}\\s+\\S+\\s+Running\\s+h3\\s`, 'm'));
  });

  it('--host-scope: VM.list, VM.stat and UPDATES of a scoped gateway show only that host\u2019s VMs (and free ones)', async () => {
    const onH1 = await addVm(a, 'scope-h1');
    const onH3 = await addVm(a, 'scope-h3');
    await start(a, onH1, 'h1');
    await start(a, onH3, 'h3');
    const free = await addVm(a, 'scope-free');
    const scoped = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h1', extraArgs: ['--host-scope', 'h1', '--socket', 'off'] });
    const s = scoped.client();
    const listed = (await s.ok<Array<[{ id: string }, unknown]>>('VM.list', X())).map(([c]) => c.id);
    expect(listed).toContain(onH1);
    expect(listed).toContain(free);
    expect(listed).not.toContain(onH3);
    const h1Vms = (await hostList(a)).find((h) => h.id === 'h1')!.vms;
    for (const id of listed) expect(h1Vms.includes(id) || id === free || !(await hostOf(a, id))).toBe(true);
    // As for any VM that does not exist (§6.2).
    expect(await s.fail('VM.stat', X({ id: onH3 }))).toEqual(['Does_not_exist', ['VM', `${onH3}/config`]]);
    expect(await s.ok('VM.exists', X({ id: onH3 }))).toBe(false);
    const [, st] = await s.ok<[unknown, { power_state: string }]>('VM.stat', X({ id: onH1 }));
    expect(st.power_state).toBe('Paused'); // VM.start leaves it Paused (§7.3)
    const [, ids] = await s.ok<[unknown, Array<[string, unknown]>, number]>('UPDATES.get', X({ last_id: 0, timeout: 0 }));
    const vmIds = ids.filter(([k]) => k === 'Vm').map(([, v]) => v);
    expect(vmIds).toContain(onH1);
    expect(vmIds).not.toContain(onH3);
    // The unscoped gateway shows both.
    const [, all] = await a.ok<[unknown, Array<[string, unknown]>, number]>('UPDATES.get', X({ last_id: 0, timeout: 0 }));
    expect(all.filter(([k]) => k === 'Vm').map(([, v]) => v)).toEqual(expect.arrayContaining([onH1, onH3]));
    await scoped.stop();
  });

  it('an agent killed with SIGKILL: its host is Down after the window, keeps its VMs, and is not available for placement', async () => {
    const id = await addVm(a, 'on-h3');
    await start(a, id, 'h3');
    const killedAt = Date.now();
    await agents.h3!.kill9();
    const h3 = await until('h3 Down', async () => (await hostList(a)).find((h) => h.id === 'h3' && h.state === 'Down'), 12_000);
    // Not before the 5 s window (less the up to 2 s since its last refresh).
    expect(Date.now() - killedAt).toBeGreaterThan(2_500);
    expect(h3.vms).toContain(id);
    expect((await hostList(a)).filter((h) => h.state === 'Up').map((h) => h.id)).toEqual(['h1', 'h2']);
    const other = await addVm(a, 'to-down');
    expect((await start(a, other, 'h3')).state).toEqual(['Failed', ['Internal_error', 'host h3 is not available']]);
    // Its VMs' calls fail until it returns (§9.7): no restart elsewhere.
    const pause = await a.ok<string>('VM.pause', X({ id }));
    expect((await waitTask(a, pause)).state).toEqual(['Failed', ['Internal_error', 'no agent for host h3']]);
    // least-loaded does not choose a Down host even though it has the most free memory left.
    const placed = await addVm(b, 'after-down');
    expect((await start(b, placed)).state[0]).toBe('Completed');
    expect(['h1', 'h2']).toContain(await hostOf(b, placed));
  });

  it('the task reaper runs in one gateway, under a lease; its holder killed with SIGKILL, the other takes it over', async () => {
    type Diag = { leases: string[] };
    const leases = async (c: RpcClient) => (JSON.parse(await c.ok<string>('get_diagnostics', X())) as Diag).leases;
    const holders = await until('one holder', async () => {
      const [la, lb] = [await leases(a), await leases(b)];
      const n = [la, lb].filter((l) => l.includes('task-reaper')).length;
      return n === 1 ? { a: la.includes('task-reaper'), b: lb.includes('task-reaper') } : undefined;
    }, 15_000);
    const [holder, other, otherClient] = holders.a ? [local, leastLoaded, b] : [leastLoaded, local, a];
    expect(holder.stderr).toMatch(/lease task-reaper: acquired by /);
    expect(other.stderr).not.toMatch(/lease task-reaper: acquired by /);
    const killedAt = Date.now();
    await holder.kill9();
    await until('the lease taken over', async () => ((await leases(otherClient)).includes('task-reaper') ? true : undefined), 25_000);
    // Not before the dead holder's lease lapsed (10 s after its last renewal, made at most ~3.4 s before the kill).
    expect(Date.now() - killedAt).toBeGreaterThan(5_000);
    expect(other.stderr).toMatch(new RegExp(`lease task-reaper: acquired by ${other.options.hostId}/`));
  });
});

describe('embedded: one host', () => {
  let d: Xenopsd;
  beforeAll(async () => {
    d = await spawnXenopsd({ mode: 'embedded', hostId: 'solo' });
  });

  it('HOST.list shows this host, Up, with its VMs and its addresses', async () => {
    const c = d.client();
    const [only] = await hostList(c);
    expect(await hostList(c)).toHaveLength(1);
    expect(only).toMatchObject({ id: 'solo', backend: 'simulator', state: 'Up', vms: [], running: 0, memory_total: TIB });
    expect(only!.addresses).toContain(new URL(d.url!).host);
    const id = vmId('solo');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    expect((await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })))).state[0]).toBe('Completed');
    // Paused by VM.start (§7.3), its domain counts as running on the host all the same.
    expect((await hostList(c))[0]).toMatchObject({ vms: [id], running: 1, memory_free: TIB - GIB });
    expect((await waitTask(c, await c.ok<string>('VM.shutdown', X({ id, delay: 0 }))) ).state[0]).toBe('Completed');
    expect((await hostList(c))[0]).toMatchObject({ vms: [], running: 0, memory_free: TIB });
    // Only this host exists: an explicit other host is not available.
    const other = vmId('solo');
    await c.ok('VM.add', X({ vm: xenopsdVm(other) }));
    expect((await waitTask(c, await c.ok<string>('VM.start', X({ id: other, paused: false, host: 'elsewhere' })))).state).toEqual([
      'Failed',
      ['Internal_error', 'host elsewhere is not available'],
    ]);
    // An id that cannot be shown on one line is shown escaped (error messages are single-line).
    expect((await waitTask(c, await c.ok<string>('VM.start', X({ id: other, paused: false, host: 'two\nlines' })))).state).toEqual([
      'Failed',
      ['Internal_error', 'host two\\nlines is not available'],
    ]);
  });
});
