/**
 * Each agent keeps its own snapshot (`agent/<host-id>`): written at close (and every N messages),
 * read at start with the log after it. An agent-only process (no read model, hence no fold
 * snapshot) restarts from it; a VM claimed after it is read whole; unfinished work is found.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeBatch, FOLD_SNAPSHOT_KEY, powerStateOf, replayLog, Streams, VifT, type CommandReply, type EventBody, type FoldSnapshot, type Operation, type Stores } from '@xenops/core';
import { LogView, openTestStores, vmConfig } from '../testing/fixtures.js';
import { agentSnapshotKey, catchUp, loadAgentSnapshot, saveAgentSnapshot } from './agent-state.js';
import { HostAgent } from './host-agent.js';

describe('the agent\u2019s own snapshot', () => {
  let stores: Stores;
  let view: LogView;
  let dispose: () => Promise<void>;
  const lines: string[] = [];
  beforeEach(async () => {
    ({ stores, view, dispose } = await openTestStores());
    lines.length = 0;
  });
  afterEach(() => dispose());

  const agent = (hostId = 'h1', extra: Partial<Parameters<typeof HostAgent.start>[0]> = {}) =>
    HostAgent.start({ stores, hostId, logger: (l) => lines.push(l), idleActorSleepMs: 20, ...extra });
  const ok = (r: CommandReply) => {
    if (!r.ok) throw new Error(`command failed: ${JSON.stringify(r.error)}`);
    return r.value;
  };
  const add = (a: HostAgent, id: string) => a.execute({ dbg: 't', command: { type: 'AddVm', config: vmConfig(id), refuseExisting: false } });
  const submit = async (a: HostAgent, vmId: string, operation: Operation) =>
    ok(await a.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId, operation } })) as string;
  const start = { kind: 'VM.start', paused: false, unpause: true } as const;

  it('an agent-only process writes it at close and restarts from it, reading only the log after it', async () => {
    let a = await agent();
    for (const id of ['r1', 'r2', 'h']) ok(await add(a, id));
    for (const id of ['r1', 'r2']) expect((await view.taskEnded(await submit(a, id, start))).status).toBe('completed');
    await a.close();
    const head = await stores.log.head();
    // No read model ran: the only snapshot is the agent's.
    expect(await stores.snapshots.get(FOLD_SNAPSHOT_KEY)).toBeUndefined();
    const own = await loadAgentSnapshot(stores.snapshots, 'h1');
    expect(own?.seq).toBe(head);
    expect([...own!.vms.keys()].sort()).toEqual(['h', 'r1', 'r2']);
    expect(own!.lastDomid).toBe(2);

    lines.length = 0;
    a = await agent();
    expect(lines.join('\n')).toMatch(new RegExp(`recovered 3 VM\\(s\\) from its snapshot at seq ${head} and 0 log message\\(s\\)`));
    // It serves on from there: domids go on, the running VMs are still running.
    expect((await view.taskEnded(await submit(a, 'h', start))).status).toBe('completed');
    expect(view.vms.get('h')!.domain!.domid).toBe(3);
    expect(powerStateOf(view.vms.get('r1')!)).toBe('Running');
    expect((await view.taskEnded(await submit(a, 'r1', { kind: 'VM.shutdown', fallbackToHard: false }))).status).toBe('completed');
    await a.close();
  });

  it('after a crash (no snapshot at the end) it recovers from its older snapshot and the log: unfinished work is found and ends', async () => {
    const a0 = await agent();
    ok(await add(a0, 'w'));
    await a0.close(); // the snapshot
    const snapshotSeq = (await loadAgentSnapshot(stores.snapshots, 'h1'))!.seq;
    // What a process killed with work in hand left after its snapshot: a task started, one queued.
    const audit = { dbg: 'crashed', timeMs: Date.now(), host: 'h1', actor: 'vm/w' };
    const append = (body: EventBody, expectedLastSeq: number) => stores.log.append({ stream: Streams.vm('w'), data: encodeBatch([{ audit, body }]), expectedLastSeq });
    const long = await append({ type: 'TaskCreated', vmId: 'w', operation: { kind: 'VM.delay', delay: 30 }, host: 'h1', ctimeMs: 0 }, await stores.log.lastSeqOf(Streams.vm('w')));
    const queued = await append({ type: 'TaskCreated', vmId: 'w', operation: start, host: 'h1', ctimeMs: 0 }, long);
    await append({ type: 'TaskStarted', taskId: String(long), startedMs: 0 }, queued);
    expect(snapshotSeq).toBeLessThan(await stores.log.head());

    lines.length = 0;
    const a = await agent();
    expect(lines.join('\n')).toMatch(new RegExp(`recovered 1 VM\\(s\\) from its snapshot at seq ${snapshotSeq} and 3 log message\\(s\\); 1 with unfinished work`));
    expect((await view.taskEnded(String(long))).error).toEqual(['Internal_error', 'Interrupted by service restart']);
    expect((await view.taskEnded(String(queued))).status).toBe('completed');
    expect(powerStateOf(view.vms.get('w')!)).toBe('Running');
    await a.close();
  });

  it('beside a read model whose fold is newer, it starts from that fold and reads the log no second time; its own quarantines stay', async () => {
    const a0 = await agent();
    for (const id of ['w', 'q']) ok(await add(a0, id));
    await a0.close();
    // Its snapshot knows 'q' quarantined (as its integrity scan would have found); the fold does not say so.
    const own = (await loadAgentSnapshot(stores.snapshots, 'h1'))!;
    own.vms.set('q', { ...own.vms.get('q')!, quarantine: { seq: own.seq, error: 'damaged since' } });
    // And a domid the read model does not know of (it skips a quarantined VM's messages).
    own.lastDomid = 7;
    await saveAgentSnapshot(stores.snapshots, 'h1', own);
    // Written after it, as a crashed process leaves it: a task started, one queued.
    const audit = { dbg: 'crashed', timeMs: Date.now(), host: 'h1', actor: 'vm/w' };
    const append = (body: EventBody, expectedLastSeq: number) => stores.log.append({ stream: Streams.vm('w'), data: encodeBatch([{ audit, body }]), expectedLastSeq });
    const long = await append({ type: 'TaskCreated', vmId: 'w', operation: { kind: 'VM.delay', delay: 30 }, host: 'h1', ctimeMs: 0 }, await stores.log.lastSeqOf(Streams.vm('w')));
    const queued = await append({ type: 'TaskCreated', vmId: 'w', operation: start, host: 'h1', ctimeMs: 0 }, long);
    await append({ type: 'TaskStarted', taskId: String(long), startedMs: 0 }, queued);
    // The read model's fold, at the head.
    const replayed = await replayLog(stores.log);
    const fold: FoldSnapshot = { seq: replayed.seq, vms: [...replayed.vms.values()], tasks: [...replayed.tasks.values()], domids: [], hosts: [], observers: {} };
    expect(fold.seq).toBeGreaterThan(own.seq);

    lines.length = 0;
    const a = await agent('h1', { foldOfReadModel: async () => ({ fold, readAfter: 0 }) });
    expect(lines.join('\n')).toMatch(new RegExp(`recovered 2 VM\\(s\\) from the read model's fold at seq ${fold.seq} and 0 log message\\(s\\); 1 with unfinished work; 1 quarantined`));
    expect((await view.taskEnded(String(long))).error).toEqual(['Internal_error', 'Interrupted by service restart']);
    expect((await view.taskEnded(String(queued))).status).toBe('completed');
    expect(view.vms.get('w')!.domain!.domid).toBe(8);
    await a.close();
  });

  it('beside a read model whose fold is not newer than its own snapshot, it starts from its own snapshot', async () => {
    const a0 = await agent();
    ok(await add(a0, 'v'));
    await a0.close();
    const own = (await loadAgentSnapshot(stores.snapshots, 'h1'))!;
    const stale: FoldSnapshot = { seq: own.seq, vms: [], tasks: [], domids: [], hosts: [], observers: {} };
    lines.length = 0;
    const a = await agent('h1', { foldOfReadModel: async () => ({ fold: stale, readAfter: 0 }) });
    expect(lines.join('\n')).toMatch(new RegExp(`recovered 1 VM\\(s\\) from its snapshot at seq ${own.seq} and 0 log message\\(s\\)`));
    await a.close();
  });

  it('a VM another host added before the snapshot and this host claimed after it is read whole', async () => {
    const h1 = await agent('h1');
    await h1.close(); // h1's snapshot: no VM
    const h2 = await agent('h2');
    ok(await add(h2, 'moved'));
    ok(await h2.execute({ dbg: 't', command: { type: 'AddDevice', device: { kind: 'vif', config: VifT.decode({ id: ['moved', 'eth0'], position: 0, mac: '02:00:00:00:00:09' }, 'vif') } } }));
    await h2.close();
    const h1again = await agent('h1');
    const t = await submit(h1again, 'moved', start);
    expect((await view.taskEnded(t)).status).toBe('completed');
    const own = (await loadAgentSnapshot(stores.snapshots, 'h1'))!;
    // From its snapshot (no VM) and the log after it, the fold still has the VM's whole history.
    const { state } = await catchUp(stores.log, stores.snapshots, 'h1', { state: own, partial: true });
    const moved = state.vms.get('moved')!;
    expect(moved).toMatchObject({ owner: 'h1', config: { id: 'moved' }, domain: { host: 'h1' } });
    expect(moved.devices.vif.get('eth0')?.plugged).toBe(true);
    // And h2 keeps nothing of it any more.
    const { state: h2state } = await catchUp(stores.log, stores.snapshots, 'h2', { state: (await loadAgentSnapshot(stores.snapshots, 'h2'))!, partial: true });
    expect(h2state.vms.has('moved')).toBe(false);
    await h1again.close();
    expect((await loadAgentSnapshot(stores.snapshots, 'h1'))!.vms.get('moved')?.devices.vif.size).toBe(1);
  });

  it('is written every N messages while the agent runs', async () => {
    const a = await agent('h1', { snapshotEvery: 5, snapshotCheckMs: 20 });
    // Checked every 20 ms, written in well under a second; the bound is for a loaded machine.
    const deadline = Date.now() + 15_000;
    const stored = async () => ((await stores.snapshots.get(agentSnapshotKey('h1'))) ? await loadAgentSnapshot(stores.snapshots, 'h1') : undefined);
    // The one written at its start first: on a loaded machine the first check may otherwise come
    // after a few adds, and the five after it would never all be written.
    while (!(await stored()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 6; i++) ok(await add(a, `n${i}`));
    await view.until(() => true);
    while (((await stored())?.vms.size ?? 0) < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Written while it runs (not at close): at least five messages after the one written at its start.
    expect((await stored())?.vms.size).toBeGreaterThanOrEqual(5);
    await a.close();
  });
});
