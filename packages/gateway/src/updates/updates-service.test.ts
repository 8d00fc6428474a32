import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeBatch, Streams, VbdT, VmT, type EventBody, type Stores, type VmConfig } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { ChangeFeed, replayRecords } from '../changes/change-feed.js';
import type { ChangeRecord } from '../changes/records.js';
import { Projection } from '../read-model/projection.js';
import { UpdatesService } from './updates-service.js';

function vmConfig(id: string): VmConfig {
  return VmT.decode(
    {
      id,
      name: id,
      ssidref: 0,
      xsdata: {},
      platformdata: {},
      bios_strings: {},
      ty: ['HVM', {}],
      suppress_spurious_page_faults: false,
      memory_static_max: 1073741824,
      memory_dynamic_max: 1073741824,
      memory_dynamic_min: 536870912,
      vcpu_max: 2,
      vcpus: 2,
      scheduler_params: { affinity: [] },
      on_crash: ['Shutdown'],
      on_shutdown: ['Shutdown'],
      on_reboot: ['Start'],
      pci_msitranslate: true,
      pci_power_mgmt: false,
    },
    'vm',
  );
}

const domain = (vmId: string): EventBody => ({
  type: 'DomainCreated',
  vmId,
  domid: 1,
  host: 'h',
  startTime: 0,
  hvm: true,
  domainType: 'Domain_HVM',
  vcpus: 2,
  memoryTarget: 1,
  memoryLimit: 1,
  shadowMultiplier: 1,
  rtcTimeoffset: '',
  xsdata: [],
  consoles: [],
});

describe('UpdatesService over the embedded log', () => {
  let dir: string;
  let stores: Stores;
  let projection: Projection;
  let updates: UpdatesService;
  let feed: ChangeFeed;

  const append = async (stream: string, bodies: EventBody[], dbg = 't'): Promise<number> => {
    const audit = { dbg, timeMs: 1_700_000_000_000, host: 'h', actor: 'test' };
    const seq = await stores.log.append({ stream, data: encodeBatch(bodies.map((body) => ({ audit, body }))) });
    await projection.waitFor(seq);
    return seq;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'xupd-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    projection = new Projection(stores.log);
    updates = new UpdatesService(projection, stores.log, { hostId: 'h' });
    feed = new ChangeFeed(projection);
    await projection.start();
  });
  afterEach(async () => {
    updates.close();
    await projection.close();
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('signals adds, domain changes and tasks; removes destroyed tasks and removed VMs', async () => {
    const add = await append(Streams.vm('a'), [{ type: 'VmAdded', vmId: 'a', config: vmConfig('a') }]);
    expect(await updates.get(undefined, 0)).toEqual([[], [['Vm', 'a']], add]);
    const created = await append(Streams.vm('a'), [{ type: 'TaskCreated', vmId: 'a', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 }]);
    const dom = await append(Streams.vm('a'), [domain('a')]);
    expect(await updates.get(add, 0)).toEqual([[], [['Task', String(created)], ['Vm', 'a']], dom]);
    // a task that ends and is destroyed by one write: removal
    const ended = await append(Streams.vm('a'), [
      { type: 'TaskCompleted', taskId: String(created), duration: 0, resultJson: '', cancelPointsSeen: 0 },
      { type: 'TaskDestroyed', taskId: String(created) },
    ]);
    expect(await updates.get(0, 0)).toEqual([[], [['Vm', 'a']], dom]);
    expect(await updates.get(dom, 0)).toEqual([[], [], dom]);
    await append(Streams.vm('a'), [{ type: 'DomainDestroyed', vmId: 'a' }]);
    const removed = await append(Streams.vm('a'), [{ type: 'VmRemoved', vmId: 'a' }]);
    expect(await updates.get(0, 0)).toEqual([[], [], 0]);
    expect(ended).toBeLessThan(removed);
  });

  it('devices: add signals the device (not the VM); refresh signals VM and devices; VM removal removes them', async () => {
    const add = await append(Streams.vm('a'), [{ type: 'VmAdded', vmId: 'a', config: vmConfig('a') }]);
    const vbd = VbdT.decode({ id: ['a', 'xvda'], backend: [] }, 'vbd');
    const dev = await append(Streams.vm('a'), [{ type: 'DeviceAdded', vmId: 'a', device: { kind: 'vbd', config: vbd } }]);
    expect(await updates.get(add, 0)).toEqual([[], [['Vbd', ['a', 'xvda']]], dev]);
    await updates.injectBarrier('d', 'a', 3);
    expect((await updates.get(dev, 0))[0]).toEqual([[3, []]]);
    expect((await updates.get(0, 0))[0]).toEqual([[3, [['Vm', 'a'], ['Vbd', ['a', 'xvda']]]]]);
    const head = await updates.lastId();
    await updates.refreshVm('d', 'a');
    expect((await updates.get(head, 0))[1]).toEqual([
      ['Vm', 'a'],
      ['Vbd', ['a', 'xvda']],
    ]);
    const live: ChangeRecord[] = [];
    const sub = feed.subscribe((r) => live.push(...r));
    const removed = await append(Streams.vm('a'), [{ type: 'VmRemoved', vmId: 'a' }]);
    sub.unsubscribe();
    expect((await updates.get(0, 0))[1]).toEqual([]);
    // one record per object, same seq, VM first
    expect(live.map((r) => [r.seq, r.kind, r.subject, JSON.parse(r.json).change])).toEqual([
      [removed, 'vm', 'xenops.updates.vm.a', ['Vm_t', ['a', []]]],
      [removed, 'vbd', 'xenops.updates.vbd.a.xvda', ['Vbd_t', [['a', 'xvda'], []]]],
    ]);
    const replayed: ChangeRecord[] = [];
    await replayRecords(stores.log, add, dev, (r) => void replayed.push(...r));
    expect(replayed.map((r) => r.kind)).toEqual(['vbd']);
    const [, [devId, [pair]]] = JSON.parse(replayed[0]!.json).change;
    expect(devId).toEqual(['a', 'xvda']);
    expect(pair[0].id).toEqual(['a', 'xvda']);
    expect(pair[1]).toMatchObject({ plugged: false });
  });

  it('blocks until something newer, wakes every waiter once, honours timeouts and close', async () => {
    await append(Streams.vm('a'), [{ type: 'VmAdded', vmId: 'a', config: vmConfig('a') }]);
    const head = await updates.lastId();
    const waiters = Array.from({ length: 20 }, () => updates.get(head, undefined));
    const timed = updates.get(head, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(updates.waiterCount).toBe(21);
    const t0 = Date.now();
    const seq = await append(Streams.vm('a'), [domain('a')]);
    const results = await Promise.all([...waiters, timed]);
    expect(Date.now() - t0).toBeLessThan(500);
    for (const r of results) expect(r).toEqual([[], [['Vm', 'a']], seq]);
    expect(updates.waiterCount).toBe(0);
    // timeout
    const before = Date.now();
    expect(await updates.get(seq, 1)).toEqual([[], [], seq]);
    expect(Date.now() - before).toBeGreaterThanOrEqual(900);
    // a removal alone does not wake anyone
    const pending = updates.get(seq, undefined);
    updates.close();
    expect(await pending).toEqual([[], [], seq]);
  });

  it('refuses a call that would block past maxWaiters, naming the limit; calls with something to return are still answered', async () => {
    const own = new Projection(stores.log);
    const limited = new UpdatesService(own, stores.log, { hostId: 'h' }, { maxWaiters: 2 });
    await own.start();
    try {
      await append(Streams.vm('a'), [{ type: 'VmAdded', vmId: 'a', config: vmConfig('a') }]);
      const head = await limited.lastId();
      const blocked = [limited.get(head, undefined), limited.get(head, 30)];
      await new Promise((r) => setTimeout(r, 20));
      await expect(limited.get(head, 30)).rejects.toMatchObject({ value: ['Internal_error', 'too many blocked UPDATES.get calls (limit 2)'] });
      expect(limited.waiterUsage).toEqual({ resource: 'updates_waiters', limit: 2, inUse: 2, refusals: 1 });
      // Not blocking: answered whatever the number of waiters.
      expect(await limited.get(head, 0)).toEqual([[], [], head]);
      expect((await limited.get(0, 30))[2]).toBe(head);
      const seq = await append(Streams.vm('a'), [domain('a')]);
      await own.waitFor(seq);
      for (const r of await Promise.all(blocked)) expect(r[2]).toBe(seq);
      expect(limited.waiterUsage.inUse).toBe(0);
      // Room again.
      const again = limited.get(seq, 30);
      await new Promise((r) => setTimeout(r, 20));
      expect(limited.waiterUsage.inUse).toBe(1);
      limited.close();
      expect(await again).toEqual([[], [], seq]);
    } finally {
      limited.close();
      await own.close();
    }
  });

  it('barriers and refresh_vm', async () => {
    const add = await append(Streams.vm('a'), [{ type: 'VmAdded', vmId: 'a', config: vmConfig('a') }]);
    await updates.injectBarrier('d', 'a', 7);
    await updates.injectBarrier('d', 'nope', 8);
    const [barriers, ids] = await updates.get(0, 0);
    expect(barriers).toEqual([
      [7, [['Vm', 'a']]],
      [8, []],
    ]);
    expect(ids).toEqual([['Vm', 'a']]);
    await updates.removeBarrier('d', 7);
    await updates.removeBarrier('d', 1234);
    expect((await updates.get(0, 0))[0]).toEqual([[8, []]]);
    const head = await updates.lastId();
    await updates.refreshVm('d', 'a');
    const [, refreshed, next] = await updates.get(head, 0);
    expect(refreshed).toEqual([['Vm', 'a']]);
    expect(next).toBeGreaterThan(add);
    await expect(updates.refreshVm('d', 'nope')).rejects.toMatchObject({ value: ['Does_not_exist', ['VM', 'nope/config']] });
  });

  it('change records: live and replayed agree (value as of the seq)', async () => {
    const live: ChangeRecord[] = [];
    const sub = feed.subscribe((r) => live.push(...r));
    await append(Streams.vm('a'), [{ type: 'VmAdded', vmId: 'a', config: vmConfig('a') }], 'dbg-1');
    await append(Streams.vm('a'), [domain('a')]);
    await updates.injectBarrier('d', 'a', 1);
    await append(Streams.vm('a'), [{ type: 'VmRemoved', vmId: 'a' }]);
    sub.unsubscribe();
    expect(live.map((r) => [r.kind, r.seq])).toEqual([
      ['vm', 1],
      ['vm', 2],
      ['vm', 4],
    ]);
    const first = JSON.parse(live[0]!.json);
    expect(first).toMatchObject({ seq: 1, kind: 'vm', id: ['Vm', 'a'], event: 'VmAdded', dbg: 'dbg-1', host: 'h', actor: 'test' });
    expect(first.time).toBe('2023-11-14T22:13:20.000Z');
    expect(first.change[0]).toBe('Vm_t');
    expect(first.change[1][1][0][1].power_state).toBe('Halted');
    expect(JSON.parse(live[1]!.json).change[1][1][0][1].power_state).toBe('Paused');
    expect(JSON.parse(live[2]!.json).change).toEqual(['Vm_t', ['a', []]]);
    expect(live[0]!.subject).toBe('xenops.updates.vm.a');

    const replayed: ChangeRecord[] = [];
    await replayRecords(stores.log, 1, projection.seq, (r) => void replayed.push(...r));
    expect(replayed.map((r) => r.json)).toEqual(live.slice(1).map((r) => r.json));
  });
});
