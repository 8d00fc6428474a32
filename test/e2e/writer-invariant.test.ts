/**
 * One writer per stream (ARCHITECTURE.md, docs/streams.md), checked on the log itself: a mixed
 * workload (both dialects, devices, every power operation, DEBUG triggers, task destruction and
 * retention-style batches, host settings, UPDATES barriers, imports, removals; on NATS two hosts
 * taking VMs from each other), then the whole log is folded and every message's audit fields are
 * checked: a `vm/<id>` message is written by the host that owns the VM after it (a claim makes
 * its writer the owner) on behalf of the VM or one of its tasks; a `host/<id>` message by that
 * host's agent; a gateway writes only its own streams; nobody writes `task/<id>`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeBatch,
  emptyVm,
  evolveVmAll,
  ownerOf,
  type Stores,
  type VmAggregate,
} from '@xenops/core';
import { openNatsStores } from '@xenops/store-nats';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { S, X, waitPower, waitTask, type RpcClient } from '../support/rpc.js';
import { seedVm, vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, NATS_URL, spawnXenopsd, uniquePrefix, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

async function run(c: RpcClient, method: string, args: Record<string, unknown>): Promise<void> {
  const task = await c.ok<string>(method, X(args));
  await waitTask(c, task, { timeoutMs: 30_000 });
}

/** Everything that writes a VM's or a host's stream, through the gateway `c` (its host: `host`). */
async function workload(c: RpcClient, tag: string): Promise<string[]> {
  const a = vmId(`${tag}a`);
  const b = vmId(`${tag}b`);
  const s = vmId(`${tag}s`);
  await c.ok('VM.add', X({ vm: xenopsdVm(a, { on_crash: ['Start'], on_reboot: ['Start'] }) }));
  await c.ok('VM.add', X({ vm: xenopsdVm(b) }));
  await c.ok('Vm.add', S({ t: seedVm(s) }));
  await c.ok('VBD.add', X({ vbd: { id: [a, 'xvda'], mode: 'ReadWrite', ty: 'Disk', backend: ['VDI', 'sr/a'] } }));
  await c.ok('VBD.add', X({ vbd: { id: [a, 'xvdb'], mode: 'ReadOnly', ty: 'CDROM' } }));
  await c.ok('VIF.add', X({ vif: { id: [a, 'eth0'], position: 0 } }));
  await c.ok('VBD.remove', X({ id: [a, 'xvdb'] }));
  for (const [method, args] of [
    ['VM.start', { id: a, paused: false }],
    ['VM.unpause', { id: a }],
    ['VM.set_xsdata', { id: a, xsdata: { k: 'v' } }],
    ['VIF.set_carrier', { id: [a, 'eth0'], carrier: false }],
    ['VM.suspend', { id: a, suspend_vdi: ['VDI', 'sr/susp'] }],
    ['VM.resume', { id: a, suspend_vdi: ['VDI', 'sr/susp'] }],
    ['VM.reboot', { id: a, delay: 5 }],
    ['VM.start', { id: a, paused: false }], // refused: Bad_power_state
    ['VM.start', { id: b, paused: true }],
  ] as const) {
    await run(c, method, args);
  }
  await waitTask(c, await c.ok<string>('Vm.start', S({ id: s })), { dialect: 'seed', timeoutMs: 30_000 }).catch(() => undefined);
  // The guest acts by itself, and answers shutdown requests as told.
  await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [b, 'ignore'] }));
  await run(c, 'VM.shutdown', { id: b, delay: 0.2 });
  await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [b, 'normal'] }));
  await run(c, 'VM.unpause', { id: b });
  await c.ok('DEBUG.trigger', X({ cmd: 'crash', args: [a] }));
  await c.ok('DEBUG.trigger', X({ cmd: 'reboot', args: [b] }));
  await waitPower(c, b, 'Running');
  // Tasks: cancelled (by hand and by a trigger), destroyed, destroyed when they end.
  const delay = await c.ok<string>('VM.delay', X({ id: b, delay: 10 }));
  await c.ok('Task.cancel', X({ id: delay }));
  await waitTask(c, delay);
  await c.ok('Task.destroy', X({ id: delay }));
  await c.ok('DEBUG.trigger', X({ cmd: 'set-cancel-trigger', args: [`${tag}-trigger`, '1'] }));
  await waitTask(c, await c.ok<string>('VM.pause', X({ id: b }, `${tag}-trigger`)));
  const finishing = await c.ok<string>('VM.delay', X({ id: b, delay: 0.1 }));
  await c.ok('Task.destroy_on_finish', X({ id: finishing }));
  // Host settings, UPDATES.
  await c.ok('HOST.send_debug_keys', X({ debug_keys: 'q' }));
  await c.ok('HOST.set_worker_pool_size', X({ pool_size: 8 }));
  await c.ok('UPDATES.inject_barrier', X({ vm_id: a, id: 3 }));
  await c.ok('UPDATES.remove_barrier', X({ id: 3 }));
  await c.ok('UPDATES.refresh_vm', X({ id: a }));
  // Export, import over an existing VM and as a new one, removal.
  const metadata = await c.ok<string>('VM.export_metadata', X({ id: s }));
  await c.ok('VM.import_metadata', X({ metadata }));
  const copy = vmId(`${tag}c`);
  await c.ok('VM.import_metadata', X({ metadata: metadata.split(s).join(copy) }));
  await run(c, 'VM.shutdown', { id: s });
  await c.ok('VM.remove', X({ id: s }));
  await c.ok('VM.remove', X({ id: copy }));
  return [a, b];
}

interface Problem {
  readonly seq: number;
  readonly stream: string;
  readonly what: string;
}

/** Folds the log and checks every message's writer against the one-writer rule. */
async function writerProblems(stores: Stores): Promise<{ problems: Problem[]; vmMessages: number; claims: number; owners: Set<string> }> {
  const vms = new Map<string, VmAggregate>();
  const problems: Problem[] = [];
  const owners = new Set<string>();
  let vmMessages = 0;
  let claims = 0;
  for await (const m of stores.log.read(0)) {
    const events = decodeBatch(m.seq, m.data);
    const problem = (what: string) => problems.push({ seq: m.seq, stream: m.stream, what });
    const hosts = new Set(events.map((e) => e.audit.host));
    if (hosts.size !== 1) problem(`one message, several writers: ${[...hosts].join(', ')}`);
    const [writer] = hosts;
    if (m.stream.startsWith('vm/')) {
      vmMessages++;
      const id = m.stream.slice(3);
      const vm = evolveVmAll(vms.get(id) ?? emptyVm(id), events);
      vms.set(id, vm);
      if (events.some((e) => e.body.type === 'VmOwnerChanged')) claims++;
      if (vm.owner !== writer) problem(`written by ${writer}, owned by ${vm.owner} after it`);
      const effective = ownerOf(vm);
      if (effective !== undefined && effective !== writer) problem(`written by ${writer}, effectively owned by ${effective}`);
      if (vm.owner) owners.add(vm.owner);
      for (const e of events) if (e.audit.actor !== m.stream && !/^task\/\d+$/.test(e.audit.actor)) problem(`${e.body.type} by actor ${e.audit.actor}`);
    } else if (m.stream.startsWith('host/')) {
      for (const e of events) if (e.audit.actor !== m.stream || e.audit.host !== m.stream.slice(5)) problem(`${e.body.type} by ${e.audit.actor} of ${e.audit.host}`);
    } else if (m.stream === 'task/unrouted' || m.stream.startsWith('updates/')) {
      for (const e of events) if (e.audit.actor !== 'gateway') problem(`${e.body.type} by ${e.audit.actor}`);
    } else {
      problem('a stream nobody writes any more');
    }
  }
  return { problems, vmMessages, claims, owners };
}

describe('one writer per stream, read back from the log', () => {
  it('embedded: the agent writes every VM and host message, the gateway only its own streams', async () => {
    const svc = await spawnXenopsd({ mode: 'embedded' });
    await workload(svc.client(), 'e');
    expect(await svc.stop()).toBe(0);
    const stores = await openEmbeddedStores({ dataDir: svc.dataDir });
    try {
      const { problems, vmMessages, claims, owners } = await writerProblems(stores);
      expect(problems).toEqual([]);
      expect(vmMessages).toBeGreaterThan(30);
      expect(claims).toBeGreaterThan(0);
      expect([...owners]).toEqual([svc.hostId]);
    } finally {
      await stores.close();
    }
  }, 180_000);

  it('NATS, two hosts: VMs move between hosts only by a claim of the new owner, and each is written by its owner alone', async () => {
    const prefix = uniquePrefix('writers');
    const host = async (hostId: string): Promise<{ agent: Xenopsd; gateway: Xenopsd }> => ({
      agent: await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId, extraArgs: ['--socket', 'off'] }),
      gateway: await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId }),
    });
    const [ha, hb] = [await host('host-a'), await host('host-b')];
    const ca = ha.gateway.client();
    const cb = hb.gateway.client();
    const [onA] = await Promise.all([workload(ca, 'na'), workload(cb, 'nb')]);
    // A VM of host a, stopped, is started through host b's gateway: host b claims it ...
    const moving = onA[1]!;
    await waitPower(ca, moving, 'Running');
    await run(ca, 'VM.shutdown', { id: moving });
    const seen = async (c: RpcClient) => {
      for (let i = 0; i < 400 && (await c.ok<[unknown, { power_state: string }]>('VM.stat', X({ id: moving })))[1].power_state !== 'Halted'; i++) await new Promise((r) => setTimeout(r, 25));
    };
    await seen(cb);
    await run(cb, 'VM.start', { id: moving, paused: false });
    // ... and host a's gateway routes to it from then on (its own agent would refuse).
    await run(ca, 'VM.pause', { id: moving });
    await run(ca, 'VM.shutdown', { id: moving });
    await Promise.all([ha.gateway.stop(), hb.gateway.stop()]);
    await Promise.all([ha.agent.stop(), hb.agent.stop()]);

    const stores = await openNatsStores({ servers: NATS_URL, prefix });
    try {
      const { problems, vmMessages, claims, owners } = await writerProblems(stores);
      expect(problems).toEqual([]);
      expect(vmMessages).toBeGreaterThan(60);
      expect(claims).toBeGreaterThan(2);
      expect([...owners].sort()).toEqual(['host-a', 'host-b']);
    } finally {
      await stores.close();
    }
  }, 240_000);
});
