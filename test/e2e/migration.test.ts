/**
 * VM.migrate and HOST.evacuate (API.md §7.8, §9.7; issue 14 items 4, 5 and 6) with real
 * processes on the simulator: three agents (h1, h2, h3) and a gateway on one NATS prefix, then
 * embedded mode (localhost migration only). What a caller sees: the task, its progress, the power
 * state kept throughout, the VM's host, its new domain, the errors, and the log's switch-over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vbdFull, vifFull } from '../support/devices.js';
import { S, X, until, waitTask, type RpcClient } from '../support/rpc.js';
import { xenops } from '../support/damage.js';
import { seedVm, vmId, xenopsdVm } from '../support/vms.js';
import { startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { cleanupAll, spawnXenopsd, uniquePrefix, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

interface HostRecord {
  id: string;
  state: string;
  vms: string[];
  running: number;
}
type VmStatePair = [Record<string, unknown>, { power_state: string; domids: number[] }];

const hostList = (c: RpcClient) => c.ok<HostRecord[]>('HOST.list', X());
const hostOf = async (c: RpcClient, vm: string) => (await hostList(c)).find((h) => h.vms.includes(vm))?.id;
const stat = async (c: RpcClient, vm: string) => (await c.ok<VmStatePair>('VM.stat', X({ id: vm })))[1];
const NO_MAPS = { vdi_map: {}, vif_map: {}, pci_map: {}, compress: false, verify_dest: false, localhost_migration: false };
const migrate = (c: RpcClient, id: string, url: string, extra: Record<string, unknown> = {}) =>
  c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: url, ...extra }));

async function running(c: RpcClient, tag: string, opts: { host?: string; paused?: boolean; vm?: Record<string, unknown> } = {}): Promise<string> {
  const id = vmId(tag);
  await c.ok('VM.add', X({ vm: xenopsdVm(id, opts.vm ?? {}) }));
  const t = await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false, ...(opts.host ? { host: opts.host } : {}) })));
  expect(t.state[0]).toBe('Completed');
  if (!opts.paused) expect((await waitTask(c, await c.ok<string>('VM.unpause', X({ id })))).state[0]).toBe('Completed');
  return id;
}

describe('NATS: migration between agents', () => {
  const prefix = uniquePrefix('migrate');
  const agents: Record<string, Xenopsd> = {};
  let gateway: Xenopsd;
  let second: Xenopsd;
  let c: RpcClient;

  beforeAll(async () => {
    const agentArgs = ['--socket', 'off', '--listen', 'off'];
    agents.h1 = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h1', extraArgs: agentArgs });
    const [h2, h3, g, g2] = await Promise.all([
      spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h2', extraArgs: agentArgs }),
      spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'h3', extraArgs: agentArgs }),
      spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h1', extraArgs: ['--placement', 'local'] }),
      spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h2', extraArgs: ['--placement', 'least-loaded'] }),
    ]);
    agents.h2 = h2;
    agents.h3 = h3;
    gateway = g;
    second = g2;
    c = gateway.client();
    await until('three hosts Up', async () => ((await hostList(c)).filter((h) => h.state === 'Up').length === 3 ? true : undefined), 15_000);
  });

  it('a Running VM moves to the host xenops://<id> names: the task completes, the VM runs there on a new domain', async () => {
    const id = await running(c, 'mig', { host: 'h1' });
    const before = await stat(c, id);
    expect(before.power_state).toBe('Running');
    const task = await migrate(c, id, 'xenops://h2');
    // The power state the migration started from is what VM.stat says throughout.
    const seen = new Set<string>();
    const done = await until(
      'the migration ends',
      async () => {
        seen.add((await stat(c, id)).power_state);
        const t = await c.ok<{ state: [string, unknown] }>('Task.stat', X({ id: task }));
        return t.state[0] === 'Pending' ? undefined : t;
      },
      20_000,
    );
    expect(done.state[0]).toBe('Completed');
    expect([...seen]).toEqual(['Running']);
    expect(await hostOf(c, id)).toBe('h2');
    const after = await stat(c, id);
    expect(after.power_state).toBe('Running');
    expect(after.domids).toHaveLength(1);
    // Every later operation runs on the new owner.
    expect((await waitTask(c, await c.ok<string>('VM.pause', X({ id })))).state[0]).toBe('Completed');
    expect((await stat(c, id)).power_state).toBe('Paused');
    expect(agents.h1!.stderr).toMatch(new RegExp(`vm ${id}: migration task ${task} switched over to host h2`));
  });

  it('operations queued behind a migration run on the destination, in order', async () => {
    const id = await running(c, 'queued', { host: 'h1' });
    const mig = await migrate(c, id, 'xenops://h2');
    const pause = await c.ok<string>('VM.pause', X({ id }));
    const vcpus = await c.ok<string>('VM.set_vcpus', X({ id, vcpus: 1 }));
    for (const t of [mig, pause, vcpus]) expect((await waitTask(c, t)).state[0]).toBe('Completed');
    expect(await hostOf(c, id)).toBe('h2');
    expect((await stat(c, id)).power_state).toBe('Paused');
  });

  it('a Paused VM stays Paused; an http URL naming a host id resolves to it; the task progresses to 1', async () => {
    const id = await running(c, 'paused', { host: 'h1', paused: true });
    const task = await migrate(c, id, 'http://h3/');
    const t = await waitTask(c, task);
    expect(t.state[0]).toBe('Completed');
    expect(await hostOf(c, id)).toBe('h3');
    expect((await stat(c, id)).power_state).toBe('Paused');
  });

  it('the maps rewrite the stored configuration: vdi_map on VDI backends, vif_map on the VIF named', async () => {
    const id = vmId('maps');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    await c.ok('VBD.add', X({ vbd: vbdFull(id, 'xvda', { backend: ['VDI', 'sr1/disk-a'] }) }));
    await c.ok('VIF.add', X({ vif: vifFull(id, '0') }));
    const t0 = await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false, host: 'h1' })));
    expect(t0.state[0]).toBe('Completed');
    const t = await waitTask(c, await migrate(c, id, 'xenops://h2', { vdi_map: { 'sr1/disk-a': 'sr2/disk-a' }, vif_map: { '0': ['Local', 'xenbr9'] } }));
    expect(t.state[0]).toBe('Completed');
    const [vbds, vifs] = await Promise.all([
      c.ok<Array<[{ backend: unknown }, { plugged: boolean }]>>('VBD.list', X({ id })),
      c.ok<Array<[{ backend: unknown }, { plugged: boolean }]>>('VIF.list', X({ id })),
    ]);
    expect(vbds.map(([v, s]) => [v.backend, s.plugged])).toEqual([[['VDI', 'sr2/disk-a'], true]]);
    expect(vifs.map(([v, s]) => [v.backend, s.plugged])).toEqual([[['Local', 'xenbr9'], true]]);
  });

  it('errors: an unresolvable URL fails the task with Failed_to_contact_remote_service; a Halted VM with Bad_power_state; an unknown VM at once', async () => {
    const id = await running(c, 'err', { host: 'h1' });
    const bad = await waitTask(c, await migrate(c, id, 'xenops://nowhere'));
    expect(bad.state).toEqual(['Failed', ['Failed_to_contact_remote_service', 'xenops://nowhere']]);
    const garbage = await waitTask(c, await migrate(c, id, 'not a url'));
    expect(garbage.state).toEqual(['Failed', ['Failed_to_contact_remote_service', 'not a url']]);
    expect(await hostOf(c, id)).toBe('h1');

    const halted = vmId('halted');
    await c.ok('VM.add', X({ vm: xenopsdVm(halted) }));
    const bps = await waitTask(c, await migrate(c, halted, 'xenops://h2'));
    expect(bps.state).toEqual(['Failed', ['Bad_power_state', ['Halted', 'Running']]]);

    expect(await c.fail('VM.migrate', X({ id: vmId('ghost'), ...NO_MAPS, xenops_url: 'xenops://h2' }))).toMatchObject(['Does_not_exist', ['VM', expect.any(String)]]);
  });

  it('a host id or URL bigger than the NATS server\u2019s max_payload is refused as such, nothing written', async () => {
    const huge = 'x'.repeat(1_100_000);
    const evac = await c.fail('HOST.evacuate', X({ host: huge }));
    expect(evac).toEqual(['Internal_error', expect.stringMatching(/^request body exceeds \d+ bytes \(the NATS server's max_payload\)/)]);
    const id = await running(c, 'huge', { host: 'h1' });
    const mig = await c.fail('VM.migrate', X({ id, ...NO_MAPS, xenops_url: `xenops://${huge}` }));
    expect(mig).toEqual(['Internal_error', expect.stringMatching(/^request body exceeds \d+ bytes/)]);
    expect(await hostOf(c, id)).toBe('h1');
  });

  it('seed Vm.migrate {id, url}: the same migration with empty maps', async () => {
    const id = vmId('seed');
    await c.ok('Vm.add', S({ t: seedVm(id) }));
    const started = await waitTask(c, await c.ok<string>('Vm.start', S({ id })), {});
    expect(started.state[0]).toBe('Completed');
    const owner = await hostOf(c, id);
    const target = owner === 'h2' ? 'h3' : 'h2';
    const t = await waitTask(c, await c.ok<string>('Vm.migrate', S({ id, url: `xenops://${target}` })));
    expect(t.state[0]).toBe('Completed');
    expect(await hostOf(c, id)).toBe(target);
  });

  it('cancelled before the point of no return: the task fails Cancelled and the VM is unchanged on its source', async () => {
    const id = await running(c, 'cancel', { host: 'h1' });
    const before = await stat(c, id);
    await c.ok('DEBUG.trigger', X({ cmd: 'set-cancel-trigger', args: ['cancel-me', '1'] }));
    const task = await c.ok<string>('VM.migrate', X({ id, ...NO_MAPS, xenops_url: 'xenops://h2' }, 'cancel-me'));
    const t = await waitTask(c, task);
    expect(t.state).toEqual(['Failed', ['Cancelled', task]]);
    expect(await hostOf(c, id)).toBe('h1');
    expect(await stat(c, id)).toMatchObject({ power_state: 'Running', domids: before.domids });
  });

  it('100 migrations back and forth between h1 and h2 through two gateways, under a lifecycle load from 6 more clients: every task ends, each VM has one domain on one host', async () => {
    const d = second.client();
    const vms = await Promise.all(Array.from({ length: 10 }, (_, i) => running(c, `pp${i}`, { host: 'h1' })));
    const accepted: string[] = [];
    let moving = true;
    const migrations = Promise.all(
      vms.map(async (id, i) => {
        const via = i % 2 === 0 ? c : d;
        for (let round = 0; round < 10; round++) {
          const task = await migrate(via, id, `xenops://${round % 2 === 0 ? 'h2' : 'h1'}`);
          accepted.push(task);
          const t = await waitTask(via, task, { timeoutMs: 30_000 });
          expect(t.state[0]).toBe('Completed');
        }
      }),
    ).finally(() => (moving = false));
    // The mixed load: other VMs started, paused, unpaused and shut down meanwhile, on every host.
    const load = Promise.all(
      Array.from({ length: 6 }, async (_, k) => {
        const via = k % 2 === 0 ? c : d;
        const id = vmId(`load${k}`);
        await via.ok('VM.add', X({ vm: xenopsdVm(id) }));
        while (moving) {
          for (const [method, args] of [['VM.start', { paused: false, host: `h${(k % 3) + 1}` }], ['VM.unpause', {}], ['VM.shutdown', {}]] as const) {
            const task = await via.ok<string>(method, X({ id, ...args }));
            accepted.push(task);
            expect((await waitTask(via, task, { timeoutMs: 30_000 })).state[0]).toBe('Completed');
          }
        }
      }),
    );
    await Promise.all([migrations, load]);
    // Nothing acknowledged was lost: every task a caller was given is in the log, ended.
    const tasks = new Map((await c.ok<Array<{ id: string; state: [string, unknown] }>>('Task.list', X())).map((t) => [t.id, t.state[0]]));
    for (const id of accepted) expect(tasks.get(id)).toBe('Completed');
    const hosts = await hostList(c);
    for (const id of vms) {
      expect(hosts.filter((h) => h.vms.includes(id)).map((h) => h.id)).toEqual(['h1']);
      const s = await stat(c, id);
      expect(s).toMatchObject({ power_state: 'Running' });
      expect(s.domids).toHaveLength(1);
    }
  }, 180_000);

  it('HOST.evacuate of a host with 20 VMs: every one migrated elsewhere, one task each, the result pairs them', async () => {
    const vms = await Promise.all(Array.from({ length: 20 }, (_, i) => running(c, `evac${i}`, { host: 'h1', paused: i % 4 === 0 })));
    const owned = (await hostList(c)).find((h) => h.id === 'h1')!.vms;
    expect(owned.length).toBeGreaterThanOrEqual(20);
    const task = await c.ok<string>('HOST.evacuate', X({ host: 'h1' }));
    const t = await waitTask(c, task, { timeoutMs: 60_000 });
    expect(t.state[0]).toBe('Completed');
    const result = (t.state[1] as { result: Array<[string, string]> }).result;
    expect(result.map(([vm]) => vm).sort()).toEqual([...owned].sort());
    const tasks = await c.ok<Array<{ id: string; state: [string, unknown] }>>('Task.list', X());
    for (const [, migration] of result) expect(tasks.find((x) => x.id === migration)?.state[0]).toBe('Completed');
    const after = await hostList(c);
    expect(after.find((h) => h.id === 'h1')!.vms).toEqual([]);
    // Spread by least-loaded over the two other hosts, each VM in the power state it had.
    const per = new Map<string, number>();
    for (const [i, id] of vms.entries()) {
      const host = await hostOf(c, id);
      expect(['h2', 'h3']).toContain(host);
      per.set(host!, (per.get(host!) ?? 0) + 1);
      expect((await stat(c, id)).power_state).toBe(i % 4 === 0 ? 'Paused' : 'Running');
    }
    expect(per.size).toBe(2);
  }, 120_000);

  it('HOST.evacuate of a host with no other Up host to go to fails naming the VMs left; an evacuation is not cancellable', async () => {
    const id = await running(c, 'stuck', { host: 'h2', vm: { memory_static_max: 2 * 1024 ** 4, memory_dynamic_max: 2 * 1024 ** 4, memory_dynamic_min: 2 * 1024 ** 4 } });
    const task = await c.ok<string>('HOST.evacuate', X({ host: 'h2' }));
    expect(await c.ok('Task.cancel', X({ id: task }))).toBeNull();
    const t = await waitTask(c, task, { timeoutMs: 60_000 });
    expect(t.state[0]).toBe('Failed');
    expect((t.state[1] as [string, string])[1]).toContain(`evacuation of h2 left`);
    expect((t.state[1] as [string, string])[1]).toContain(id);
    expect(await hostOf(c, id)).toBe('h2');
  }, 120_000);

  it('xenops migrate VM --to HOST follows the task with a progress bar; xenops evacuate HOST lists what it moved; bad input is a usage error', async () => {
    const id = await running(c, 'cli', { host: 'h1' });
    const moved = await xenops(gateway.url!, 'migrate', id, '--to', 'h2');
    expect(moved.code, moved.stderr).toBe(0);
    // The CLI names a VM by its name (xenopsdVm's is web01).
    expect(moved.stdout).toMatch(/^Migrated web01: Running/m);
    expect(await hostOf(c, id)).toBe('h2');
    const json = await xenops(gateway.url!, '--json', 'migrate', id, '--to', 'xenops://h1');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ vm: id, power_state: 'Running', to: 'xenops://h1' });

    const nowhere = await xenops(gateway.url!, 'migrate', id, '--to', 'h9');
    expect(nowhere.code).not.toBe(0);
    expect(nowhere.stderr).toMatch(/xenops:\/\/h9 names no reachable host/);
    const noTarget = await xenops(gateway.url!, 'migrate', id);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toMatch(/--to HOST is required/);

    const evac = await xenops(gateway.url!, 'evacuate', 'h1');
    expect(evac.code, evac.stderr).toBe(0);
    expect(evac.stdout).toMatch(/^Evacuated h1: \d+ VM\(s\) migrated/m);
    expect(evac.stdout).toContain(id);
    expect((await hostList(c)).find((h) => h.id === 'h1')!.vms).toEqual([]);
  }, 60_000);

  it('the destination agent killed before the switch-over: the task fails with the cause and the VM still runs on its source, unchanged', async () => {
    const id = await running(c, 'deaddst', { host: 'h1' });
    const before = await stat(c, id);
    await agents.h3!.kill9();
    const t = await waitTask(c, await migrate(c, id, 'xenops://h3'), { timeoutMs: 30_000 });
    expect(t.state).toEqual(['Failed', ['Failed_to_contact_remote_service', 'xenops://h3']]);
    expect(await hostOf(c, id)).toBe('h1');
    expect(await stat(c, id)).toMatchObject({ power_state: 'Running', domids: before.domids });
    // The VM works on its source as before.
    expect((await waitTask(c, await c.ok<string>('VM.pause', X({ id })))).state[0]).toBe('Completed');
  }, 60_000);

  it('the invariant monitor over the whole log: after all of the above no VM ever had two domains or two hosts', async () => {
    const report = (await (await fetch(`${gateway.url}/verify`)).json()) as { ok: boolean; invariantViolations: unknown[] };
    expect(report.invariantViolations).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('NATS: kill -9 at each step of a migration (XENOPS_FAULT_POINT)', () => {
  const prefix = uniquePrefix('migfault');
  const agentArgs = ['--socket', 'off', '--listen', 'off'];
  const agents: Record<string, Xenopsd> = {};
  let gateway: Xenopsd;
  let c: RpcClient;
  const agent = (hostId: string, fault?: string, dataDir?: string) =>
    spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId, extraArgs: agentArgs, ...(dataDir ? { dataDir } : {}), env: fault ? { XENOPS_FAULT_POINT: fault } : {} });
  /** Restarts a host's agent on its data dir, with a fault point armed or none. */
  const restart = async (hostId: string, fault?: string) => {
    const old = agents[hostId]!;
    await old.kill9().catch(() => undefined);
    agents[hostId] = await agent(hostId, fault, old.dataDir);
  };
  const verify = async () => (await (await fetch(`${gateway.url}/verify`)).json()) as { ok: boolean; invariantViolations: unknown[]; differences: string[] };

  beforeAll(async () => {
    agents.h1 = await agent('h1');
    agents.h2 = await agent('h2');
    gateway = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'h1', extraArgs: ['--placement', 'local', '--host-down-after-s', '60'] });
    c = gateway.client();
    await until('two hosts Up', async () => ((await hostList(c)).filter((h) => h.state === 'Up').length === 2 ? true : undefined), 15_000);
  });

  it('the source killed after the switch-over: the destination finishes by itself; the source, back, has nothing left of the VM', async () => {
    await restart('h1', 'migration-switched-over');
    const id = await running(c, 'srcdead', { host: 'h1' });
    const task = await migrate(c, id, 'xenops://h2');
    await agents.h1!.exited();
    const t = await waitTask(c, task, { timeoutMs: 30_000 });
    expect(t.state[0]).toBe('Completed');
    expect(await hostOf(c, id)).toBe('h2');
    expect((await stat(c, id)).power_state).toBe('Running');
    expect(agents.h2!.stderr).not.toMatch(/not acted on|cannot/);
    await restart('h1');
    await until('h1 serves again', async () => ((await hostList(c)).find((h) => h.id === 'h1')?.state === 'Up' ? true : undefined), 15_000);
    expect(await hostOf(c, id)).toBe('h2');
    expect(agents.h1!.stderr).not.toContain(id);
    expect((await waitTask(c, await c.ok<string>('VM.pause', X({ id })))).state[0]).toBe('Completed');
  }, 60_000);

  it('the source killed once the destination has the state, before its switch-over: the task fails as interrupted and the VM runs on, unchanged, on its source', async () => {
    await restart('h1', 'migration-state-sent');
    const id = await running(c, 'sentdead', { host: 'h1' });
    const before = await stat(c, id);
    const task = await migrate(c, id, 'xenops://h2');
    await agents.h1!.exited();
    await restart('h1');
    const t = await waitTask(c, task, { timeoutMs: 30_000 });
    expect(t.state).toEqual(['Failed', ['Internal_error', 'Interrupted by service restart']]);
    expect(await hostOf(c, id)).toBe('h1');
    expect(await stat(c, id)).toMatchObject({ power_state: 'Running', domids: before.domids });
  }, 60_000);

  it('the destination killed while it restores: back, it fails the task and its state check halts the VM (§7.3, §7.8); no domain anywhere', async () => {
    await restart('h2', 'migration-receiving');
    const id = await running(c, 'dstdead', { host: 'h1' });
    const task = await migrate(c, id, 'xenops://h2');
    await agents.h2!.exited();
    await restart('h2');
    const t = await waitTask(c, task, { timeoutMs: 30_000 });
    expect(t.state[0]).toBe('Failed');
    await until('the state check halts the VM', async () => ((await stat(c, id)).power_state === 'Halted' ? true : undefined), 15_000);
    expect((await stat(c, id)).domids).toEqual([]);
    expect(await hostOf(c, id)).toBeUndefined();
  }, 60_000);

  it('the invariant monitor over the whole log: no VM ever had two domains or two hosts', async () => {
    const report = await verify();
    expect(report.invariantViolations).toEqual([]);
    expect(report.differences).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('NATS unavailable for a while during migrations (a private nats-server stopped and started again)', () => {
  const servers: OwnNatsServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((x) => x.stop('SIGKILL')));
  });

  it('each migration either completes or leaves the VM where it was: never both, never a VM on two hosts', async () => {
    const nats = await startOwnNatsServer();
    servers.push(nats);
    const prefix = uniquePrefix('migout');
    const flags = ['--nats', nats.url, '--nats-prefix', prefix];
    // mode 'embedded' only means spawnXenopsd adds no --nats of its own: ours is in extraArgs.
    await spawnXenopsd({ mode: 'embedded', role: 'agent', hostId: 'h1', extraArgs: ['--socket', 'off', '--listen', 'off', ...flags] });
    await spawnXenopsd({ mode: 'embedded', role: 'agent', hostId: 'h2', extraArgs: ['--socket', 'off', '--listen', 'off', ...flags] });
    const g = await spawnXenopsd({ mode: 'embedded', role: 'gateway', hostId: 'h1', extraArgs: flags });
    const c = g.client();
    await until('two hosts Up', async () => ((await hostList(c).catch(() => [])).filter((h) => h.state === 'Up').length === 2 ? true : undefined), 15_000);
    const id = await running(c, 'outage', { host: 'h1' });
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      if ((await stat(c, id)).power_state === 'Halted') await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })));
      const from = await hostOf(c, id);
      const to = from === 'h1' ? 'h2' : 'h1';
      const task = await migrate(c, id, `xenops://${to}`);
      await new Promise((r) => setTimeout(r, round * 7));
      await nats.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 1_500));
      await nats.start();
      const t = await until(
        `round ${round}: the migration ends`,
        async () => {
          const x = await c.ok<{ state: [string, unknown] }>('Task.stat', X({ id: task })).catch(() => undefined);
          return x && x.state[0] !== 'Pending' ? x : undefined;
        },
        60_000,
      );
      const hosts = (await until('HOST.list answers', async () => hostList(c).catch(() => undefined), 20_000)).filter((h) => h.vms.includes(id)).map((h) => h.id);
      const s = await stat(c, id);
      outcomes.push(`${t.state[0]} ${JSON.stringify(t.state[1]).slice(0, 80)} -> ${hosts.join(',') || 'no host'} ${s.power_state}`);
      expect(hosts.length).toBeLessThanOrEqual(1);
      expect(s.domids.length).toBeLessThanOrEqual(1);
      if (t.state[0] === 'Completed') expect(hosts).toEqual([to]);
      else if (s.power_state === 'Running') expect(hosts).toEqual([from]);
    }
    process.stdout.write(`migrations through NATS outages: ${outcomes.join(' | ')}\n`);
    const report = (await (await fetch(`${g.url}/verify`)).json()) as { invariantViolations: unknown[] };
    expect(report.invariantViolations).toEqual([]);
  }, 300_000);
});

describe('embedded: localhost migration only', () => {
  let svc: Xenopsd;
  let c: RpcClient;

  beforeAll(async () => {
    svc = await spawnXenopsd({ mode: 'embedded' });
    c = svc.client();
  });

  it('xenops://<this host> moves the VM to a new domain on the same host; any other host is unresolvable', async () => {
    const id = await running(c, 'local');
    const before = await stat(c, id);
    const t = await waitTask(c, await migrate(c, id, `xenops://${svc.hostId}`, { localhost_migration: true }));
    expect(t.state, svc.stderr).toEqual(['Completed', expect.anything()]);
    const after = await stat(c, id);
    expect(after.power_state).toBe('Running');
    expect(after.domids).toHaveLength(1);
    expect(after.domids[0]).toBeGreaterThan(before.domids[0]!);

    const other = await waitTask(c, await migrate(c, id, 'xenops://elsewhere'));
    expect(other.state).toEqual(['Failed', ['Failed_to_contact_remote_service', 'xenops://elsewhere']]);
    // The gateway's own advertised address resolves too.
    const url = new URL(svc.url!);
    const byAddress = await waitTask(c, await migrate(c, id, `http://${url.host}/`));
    expect(byAddress.state[0]).toBe('Completed');
  });
});
