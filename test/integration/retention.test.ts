import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { HostAgent } from '@xenops/actors';
import { decodeBatch, encodeBatch, replayLog, Streams, XenopsError, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Projection } from '../../packages/gateway/src/read-model/projection.js';
import { RetentionJanitor } from '../../packages/gateway/src/retention/janitor.js';
import { TaskReaper } from '../../packages/gateway/src/retention/task-reaper.js';
import { EngineClient } from '../../packages/gateway/src/service/engine-client.js';
import { vmConfig } from '../../packages/actors/src/testing/fixtures.js';

const audit = { dbg: 't', timeMs: 0, host: 'h1', actor: 'test' };

describe('retention', () => {
  let dir: string;
  let stores: Stores;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-retention-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    for (let i = 0; i < 20; i++) {
      await stores.log.append({ stream: Streams.vm(`vm${i}`), data: encodeBatch([{ audit, body: { type: 'VmAdded', vmId: `vm${i}`, config: vmConfig(`vm${i}`) } }]) });
    }
  });
  afterEach(async () => {
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps everything until messages are older than the period, then cuts at a covering snapshot', async () => {
    const projection = new Projection(stores.log, { snapshots: stores.snapshots });
    await projection.start();
    const janitor = new RetentionJanitor(stores.log, stores.snapshots, projection, { days: 1 });
    const day0 = Date.parse('2026-11-01T00:00:00Z');
    await janitor.run(day0);
    expect(await stores.log.firstSeq()).toBe(1); // nothing is a day old yet
    // More history, then a pass two days later: the first mark (seq 20) is past the period.
    for (let i = 20; i < 30; i++) {
      await stores.log.append({ stream: Streams.vm(`vm${i}`), data: encodeBatch([{ audit, body: { type: 'VmAdded', vmId: `vm${i}`, config: vmConfig(`vm${i}`) } }]) });
    }
    await projection.waitFor(30);
    await janitor.run(day0 + 2 * 86_400_000);
    expect(await stores.log.firstSeq()).toBe(20);

    // Every reader starts from the covering snapshot: a restarted read model, a full replay ...
    const restarted = new Projection(stores.log, { snapshots: stores.snapshots });
    await restarted.start();
    expect(restarted.vms.size).toBe(30);
    const replayed = await replayLog(stores.log, undefined, stores.snapshots);
    expect(isDeepStrictEqual(replayed.vms, restarted.vms)).toBe(true);
    // ... time travel inside the retained history, and a clear error before it.
    expect((await restarted.stateAt(30)).vms.size).toBe(30);
    await expect(restarted.stateAt(5)).rejects.toThrowError(XenopsError);
    await expect(restarted.stateAt(5)).rejects.toThrow(/as_of 5 is older than the retained history \(the log starts at seq 20\)/);

    // ... and an agent restoring a VM whose whole stream was deleted still writes to it.
    const agent = await HostAgent.start({ stores, hostId: 'h1' });
    const reply = await agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId: 'vm3', operation: { kind: 'VM.pause' } } });
    expect(reply.ok).toBe(true);
    await agent.close();
    await restarted.close();
    await projection.close();
  });

  it('destroys finished tasks 24 h after they ended, and keeps pending and recent ones (§7.1)', async () => {
    const day0 = Date.parse('2026-11-01T00:00:00Z');
    const task = (vmId: string, last: number) =>
      stores.log.append({
        stream: Streams.vm(vmId),
        data: encodeBatch([{ audit, body: { type: 'TaskCreated', vmId, operation: { kind: 'VM.pause' }, host: 'h1', ctimeMs: day0 } }]),
        expectedLastSeq: last,
      });
    const old = await task('vm0', 1);
    const recent = await task('vm1', 2);
    const pending = await task('vm2', 3);
    const end = async (vmId: string, id: number, startedMs: number) =>
      stores.log.append({
        stream: Streams.vm(vmId),
        data: encodeBatch([
          { audit, body: { type: 'TaskStarted', taskId: String(id), startedMs } },
          { audit, body: { type: 'TaskCompleted', taskId: String(id), duration: 1, resultJson: '', cancelPointsSeen: 1 } },
        ]),
        expectedLastSeq: id,
      });
    await end('vm0', old, day0);
    await end('vm1', recent, day0 + 86_400_000);
    const projection = new Projection(stores.log);
    await projection.start();
    // The destruction is a fact of the task's VM: the reaper asks its owner's agent to record it.
    const agent = await HostAgent.start({ stores, hostId: 'h1' });
    const reaper = new TaskReaper(new EngineClient(stores.bus, projection), projection, { hostId: 'h1' });
    expect(await reaper.run(day0 + 86_400_000 + 2_000)).toBe(1);
    await projection.waitFor(await stores.log.head());
    expect([...projection.tasks.keys()].sort()).toEqual([String(recent), String(pending)].sort());
    // Written by the agent on the VM's stream, not by the gateway.
    const last = await stores.log.lastSeqOf(Streams.vm('vm0'));
    let events: ReturnType<typeof decodeBatch> = [];
    for await (const m of stores.log.read(last - 1, last)) events = decodeBatch(m.seq, m.data);
    expect(events.map((e) => [e.body.type, e.audit.actor, e.audit.dbg])).toEqual([
      ['VmOwnerChanged', 'vm/vm0', 'internal:task_retention'],
      ['TaskDestroyed', 'vm/vm0', 'internal:task_retention'],
    ]);
    await agent.close();
    await projection.close();
  });

  it('an evacuation task (the gateways\u2019 own, on task/evacuations) is destroyed there 24 h after it ended, never sent to an agent', async () => {
    const day0 = Date.parse('2026-11-01T00:00:00Z');
    const gw = { ...audit, actor: 'gateway' };
    const created = await stores.log.append({
      stream: Streams.evacuations(),
      data: encodeBatch([{ audit: gw, body: { type: 'TaskCreated', vmId: '', operation: { kind: 'HOST.evacuate', host: 'h9' }, host: 'h1', ctimeMs: day0 } }]),
    });
    await stores.log.append({
      stream: Streams.evacuations(),
      data: encodeBatch([
        { audit: gw, body: { type: 'TaskStarted', taskId: String(created), startedMs: day0 } },
        { audit: gw, body: { type: 'TaskCompleted', taskId: String(created), duration: 1, resultJson: '[]', cancelPointsSeen: 0 } },
      ]),
    });
    const projection = new Projection(stores.log);
    await projection.start();
    // No agent runs: the evacuation's destruction needs none.
    const reaper = new TaskReaper(new EngineClient(stores.bus, projection), projection, { hostId: 'h1', log: stores.log });
    expect(await reaper.run(day0 + 86_400_000 + 2_000)).toBe(1);
    await projection.waitFor(await stores.log.head());
    expect(projection.tasks.has(String(created))).toBe(false);
    const last = await stores.log.lastSeqOf(Streams.evacuations());
    let events: ReturnType<typeof decodeBatch> = [];
    for await (const m of stores.log.read(last - 1, last)) events = decodeBatch(m.seq, m.data);
    expect(events.map((e) => [e.body.type, e.audit.actor])).toEqual([['TaskDestroyed', 'gateway']]);
    await projection.close();
  });

  it('an evacuation still pending whose gateway is gone (its lease lapsed) is failed, so that every task ends (§7.1); one whose runner holds the lease is left to run', async () => {
    const day0 = Date.parse('2026-11-01T00:00:00Z');
    const gw = { ...audit, actor: 'gateway' };
    const evacuation = async (host: string) => {
      const id = await stores.log.append({
        stream: Streams.evacuations(),
        data: encodeBatch([{ audit: gw, body: { type: 'TaskCreated', vmId: '', operation: { kind: 'HOST.evacuate', host }, host: 'h1', ctimeMs: day0 } }]),
      });
      await stores.log.append({ stream: Streams.evacuations(), data: encodeBatch([{ audit: gw, body: { type: 'TaskStarted', taskId: String(id), startedMs: day0 } }]) });
      return String(id);
    };
    const orphan = await evacuation('h8');
    const running = await evacuation('h9');
    expect(await stores.leases.acquire(`evacuation-${running}`, 'another-gateway')).toBe(true);
    const projection = new Projection(stores.log);
    await projection.start();
    const reaper = new TaskReaper(new EngineClient(stores.bus, projection), projection, { hostId: 'h1', log: stores.log, leases: stores.leases });
    await reaper.run(day0 + 120_000);
    await projection.waitFor(await stores.log.head());
    expect(projection.tasks.get(orphan)).toMatchObject({ status: 'failed', error: ['Internal_error', expect.stringContaining('evacuation of h8 stopped: the gateway that ran it is gone')] });
    expect(projection.tasks.get(running)?.status).toBe('pending');
    await projection.close();
  });

  it('refuses to start a read model on a truncated log that no snapshot covers', async () => {
    await stores.log.truncateBefore(10);
    await expect(new Projection(stores.log, { snapshots: stores.snapshots }).start()).rejects.toThrow(/no fold snapshot|newest fold snapshot is at seq 0/);
  });
});
