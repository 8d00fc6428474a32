import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeBatch, emptyHost, encodeBatch, powerStateOf, replayLog, Streams, type CommandReply, type Effect, type FoldSnapshot, type Observation, type Operation, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import type { Backend, EffectContext } from '../backend/backend.js';
import { SimulatorBackend } from '../backend/simulator/simulator.js';
import { LogView, openTestStores, simulatorAs, vmConfig } from '../testing/fixtures.js';
import { saveAgentSnapshot } from './agent-state.js';
import { HostAgent } from './host-agent.js';

describe('HostAgent on the embedded store', () => {
  let stores: Stores;
  let view: LogView;
  let dispose: () => Promise<void>;
  let agent: HostAgent;

  beforeEach(async () => {
    ({ stores, view, dispose } = await openTestStores());
    agent = await HostAgent.start({ stores, hostId: 'h1', idleActorSleepMs: 20 });
  });
  afterEach(async () => {
    await agent.close();
    await dispose();
  });

  /** The simulator, with its VM_build (a start's second atom) run through `build`. */
  const interceptBuild = (build: (ctx: EffectContext, proceed: () => Promise<Observation>) => Promise<Observation>): Backend => {
    const sim = new SimulatorBackend();
    return {
      name: 'intercepted build',
      capabilities: { debugTriggers: true, journalsEachAtom: true },
      start: (host) => sim.start(host),
      close: () => sim.close(),
      perform: (effect: Effect, ctx: EffectContext) => (effect.kind === 'VM_build' ? build(ctx, () => sim.perform(effect, ctx)) : sim.perform(effect, ctx)),
      domains: () => sim.domains(),
      hostFacts: () => sim.hostFacts(),
      onDomainEvent: (listener) => sim.onDomainEvent(listener),
      debugTrigger: (cmd, args, vm) => sim.debugTrigger(cmd, args, vm),
    };
  };

  const ok = (r: CommandReply) => {
    if (!r.ok) throw new Error(`command failed: ${JSON.stringify(r.error)}`);
    return r.value;
  };
  const add = (id: string, refuseExisting = false) =>
    agent.execute({ dbg: 't', command: { type: 'AddVm', config: vmConfig(id), refuseExisting } });
  const submit = async (vmId: string, operation: Operation) =>
    ok(await agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId, operation } })) as string;

  it('starts a VM through its four atoms and leaves it Paused, then shuts it down', async () => {
    ok(await add('a'));
    const start = await submit('a', { kind: 'VM.start', paused: false, unpause: false });
    const t = await view.taskEnded(start);
    expect(t.status).toBe('completed');
    expect(t.cancelPointsSeen).toBe(4);
    expect(powerStateOf(view.vms.get('a')!)).toBe('Paused');
    expect(view.vms.get('a')!.domain?.domid).toBe(1);

    const shutdown = await submit('a', { kind: 'VM.shutdown', delay: 5, fallbackToHard: false });
    expect((await view.taskEnded(shutdown)).status).toBe('completed');
    expect(powerStateOf(view.vms.get('a')!)).toBe('Halted');
  });

  it('checks power preconditions when the task reaches the head of the queue', async () => {
    ok(await add('b'));
    // Both accepted at once; the second start fails only when it runs, after the first.
    const first = await submit('b', { kind: 'VM.start', paused: false, unpause: true });
    const second = await submit('b', { kind: 'VM.start', paused: false, unpause: true });
    expect((await view.taskEnded(first)).status).toBe('completed');
    const failed = await view.taskEnded(second);
    expect(failed.error).toEqual(['Bad_power_state', ['Running', 'Halted']]);
  });

  it('runs one VM\u2019s tasks in arrival order while other VMs proceed', async () => {
    const ids = ['c1', 'c2', 'c3', 'c4'];
    for (const id of ids) ok(await add(id));
    const perVm = await Promise.all(
      ids.map(async (id) => [
        await submit(id, { kind: 'VM.start', paused: false, unpause: false }),
        await submit(id, { kind: 'VM.unpause' }),
        await submit(id, { kind: 'VM.pause' }),
      ]),
    );
    for (const tasks of perVm) {
      for (const t of tasks) expect((await view.taskEnded(t)).status).toBe('completed');
      const order = tasks.map((t) => view.ended.findIndex((e) => e.id === t));
      expect([...order].sort((x, y) => x - y)).toEqual(order);
    }
    for (const id of ids) expect(powerStateOf(view.vms.get(id)!)).toBe('Paused');
  });

  it('refuses an existing id for the seed add and overwrites for the xenopsd add', async () => {
    ok(await add('d'));
    expect(await add('d', true)).toMatchObject({ ok: false, error: ['Already_exists', ['VM', 'd']] });
    expect((await add('d', false)).ok).toBe(true);
  });

  it('cancels a queued task at once and a running one at its next atom', async () => {
    await agent.close();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    agent = await HostAgent.start({
      stores,
      hostId: 'h1',
      // Hold the start inside its second atom.
      backend: interceptBuild(async (_ctx, proceed) => {
        await gate;
        return proceed();
      }),
    });
    ok(await add('g'));
    const running = await submit('g', { kind: 'VM.start', paused: false, unpause: false });
    const queued = await submit('g', { kind: 'VM.unpause' });
    await view.until(() => view.vms.get('g')?.running?.taskId === running);
    ok(await agent.execute({ dbg: 't', command: { type: 'CancelTask', vmId: 'g', taskId: queued } }));
    expect((await view.taskEnded(queued)).error).toEqual(['Cancelled', queued]);
    ok(await agent.execute({ dbg: 't', command: { type: 'CancelTask', vmId: 'g', taskId: running } }));
    release();
    const cancelled = await view.taskEnded(running);
    expect(cancelled.error).toEqual(['Cancelled', running]);
    expect(cancelled.cancelPointsSeen).toBe(3);
    // The state check tears down the domain that never became survivable (§7.3).
    await view.until(() => [...view.tasks.values()].every((t) => t.status !== 'pending') && !view.vms.get('g')?.domain);
    expect(powerStateOf(view.vms.get('g')!)).toBe('Halted');
  });

  it('refuses a caller\u2019s operation once the VM\u2019s queue is full, appending nothing; the engine\u2019s own checks still queue', async () => {
    await agent.close();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    agent = await HostAgent.start({
      stores,
      hostId: 'h1',
      maxQueuedTasks: 2,
      backend: interceptBuild(async (_ctx, proceed) => {
        await gate;
        return proceed();
      }),
    });
    ok(await add('q'));
    ok(await add('other'));
    const running = await submit('q', { kind: 'VM.start', paused: false, unpause: false });
    await view.until(() => view.vms.get('q')?.running?.taskId === running && view.vms.get('q')?.domain !== undefined);
    const queued = [await submit('q', { kind: 'VM.unpause' }), await submit('q', { kind: 'VM.pause' })];
    const head = await stores.log.head();
    const refused = await agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId: 'q', operation: { kind: 'VM.delay', delay: 0 } } });
    expect(refused).toMatchObject({ ok: false, error: ['Internal_error', 'too many queued tasks for VM q (limit 2)'] });
    expect(await stores.log.head()).toBe(head);
    // Another VM's queue is its own.
    expect(await submit('other', { kind: 'VM.delay', delay: 0 })).toMatch(/^\d+$/);
    // A guest action queues a state check past the limit: it keeps the VM consistent.
    ok(await agent.execute({ dbg: 't', command: { type: 'DebugTrigger', cmd: 'crash', args: ['q'] } }));
    await view.until(() => view.vms.get('q')!.queue.length === 3);
    expect(view.vms.get('q')!.queue.at(-1)?.dbg).toBe('internal:check_state');
    release();
    for (const t of queued) await view.taskEnded(t);
    await view.until(() => [...view.tasks.values()].every((t) => t.status !== 'pending'));
    // Once the queue has drained, callers are served again.
    expect((await view.taskEnded(await submit('q', { kind: 'VM.delay', delay: 0 }))).status).toBe('completed');
  });

  it('fails a task whose atom runs past its limit and tears down what the start did (§7.2, §7.3)', async () => {
    await agent.close();
    let atomSignal: AbortSignal | undefined;
    agent = await HostAgent.start({
      stores,
      hostId: 'h1',
      atomTimeoutMs: 100,
      // A build that never returns and ignores its signal: the limit must still end the task.
      backend: interceptBuild((ctx) => {
        atomSignal = ctx.signal;
        return new Promise<never>(() => {});
      }),
    });
    ok(await add('t'));
    const started = Date.now();
    const start = await submit('t', { kind: 'VM.start', paused: false, unpause: false });
    const failed = await view.taskEnded(start);
    expect(failed.error).toEqual(['Internal_error', `Timed out while waiting on task ${start}`]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(atomSignal?.aborted).toBe(true);
    // As any other failure of a start: the state check destroys the half-built domain.
    await view.until(() => [...view.tasks.values()].every((t) => t.status !== 'pending') && !view.vms.get('t')?.domain);
    expect(powerStateOf(view.vms.get('t')!)).toBe('Halted');
    // The VM's queue goes on: the next operation runs.
    const next = await submit('t', { kind: 'VM.delay', delay: 0 });
    expect((await view.taskEnded(next)).status).toBe('completed');
  });

  it('ends a waiting atom that listens to its signal at the limit, and leaves a shorter one alone', async () => {
    await agent.close();
    agent = await HostAgent.start({ stores, hostId: 'h1', atomTimeoutMs: 150 });
    ok(await add('w'));
    const long = await submit('w', { kind: 'VM.delay', delay: 30 });
    const t0 = Date.now();
    expect((await view.taskEnded(long)).error).toEqual(['Internal_error', `Timed out while waiting on task ${long}`]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const short = await submit('w', { kind: 'VM.delay', delay: 0.05 });
    expect((await view.taskEnded(short)).status).toBe('completed');
  });

  const actors = async () =>
    (ok(await agent.execute({ dbg: 't', command: { type: 'Diagnose' } })) as { actors: { awake: number; asleep: number } }).actors;
  const allAsleep = async () => {
    for (let i = 0; i < 500; i++) {
      if ((await actors()).awake === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`actors still awake: ${JSON.stringify(await actors())}`);
  };

  it('puts the actor of an idle VM to sleep and wakes it, with its state, for the next command', async () => {
    ok(await add('s1'));
    const start = await submit('s1', { kind: 'VM.start', paused: false, unpause: false });
    expect((await view.taskEnded(start)).status).toBe('completed');
    await allAsleep();
    expect(await actors()).toEqual({ awake: 0, asleep: 1 });
    // Woken from its kept state: the next decision appends after the last seq (no refusal).
    const unpause = await submit('s1', { kind: 'VM.unpause' });
    expect((await view.taskEnded(unpause)).status).toBe('completed');
    expect(powerStateOf(view.vms.get('s1')!)).toBe('Running');
  });

  it('reloads a sleeping VM from the log when another writer appended to its stream meanwhile', async () => {
    ok(await add('s2'));
    await allAsleep();
    const last = await stores.log.lastSeqOf(Streams.vm('s2'));
    const audit = { dbg: 'other', timeMs: 0, host: 'elsewhere', actor: 'test' };
    await stores.log.append({
      stream: Streams.vm('s2'),
      data: encodeBatch([{ audit, body: { type: 'VmAdded', vmId: 's2', config: vmConfig('s2', { name: 'renamed elsewhere' }) } }]),
      expectedLastSeq: last,
    });
    // The kept state is one message behind: the append is refused, the actor reloaded, the call succeeds.
    const start = await submit('s2', { kind: 'VM.start', paused: true, unpause: false });
    expect((await view.taskEnded(start)).status).toBe('completed');
    expect(view.vms.get('s2')!.config?.name).toBe('renamed elsewhere');
    expect(powerStateOf(view.vms.get('s2')!)).toBe('Paused');
  });

  it('fails an operation on an unknown VM without creating a task', async () => {
    const r = await agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId: 'nope', operation: { kind: 'VM.pause' } } });
    expect(r).toMatchObject({ ok: false, error: ['Does_not_exist', ['VM', 'nope/config']] });
    expect(view.tasks.size).toBe(0);
  });

  it('a failed write of the point of no return is logged and stalls the actor, which is reloaded; the task still ends', async () => {
    await agent.close();
    const lines: string[] = [];
    let injected = 0;
    const log = stores.log;
    const failing: Stores = {
      ...stores,
      log: Object.assign(Object.create(log) as typeof log, {
        append: (req: Parameters<typeof log.append>[0]) => {
          const atoms = decodeBatch(0, req.data).map((e) => (e.body.type === 'TaskProgressed' ? e.body.atom : ''));
          if (atoms.includes('point of no return') && injected++ === 0) return Promise.reject(new Error('injected: the store is unreachable'));
          return log.append(req);
        },
      }),
    };
    agent = await HostAgent.start({ stores: failing, hostId: 'h1', logger: (l) => lines.push(l) });
    ok(await add('nr'));
    expect((await view.taskEnded(await submit('nr', { kind: 'VM.start', paused: false, unpause: true }))).status).toBe('completed');
    const suspend = await submit('nr', { kind: 'VM.suspend', disk: ['VDI', 'sr/nr'] });
    const ended = await view.taskEnded(suspend);
    expect(injected).toBe(1);
    expect(lines.join('\n')).toMatch(/vm nr: task \d+: cannot record its point of no return: .*injected: the store is unreachable/);
    // Not swallowed: the actor stopped trusting its state and was reloaded from the log, which
    // ends the task it was running as interrupted (every task ends), saying why: no service
    // restarted, the log could not be written.
    await view.until(() => lines.some((l) => l.includes('vm nr: reloaded from the log after a failed write')));
    expect(ended.error).toEqual(['Internal_error', 'Interrupted: the event log could not be written (the store was unreachable)']);
    expect(lines.join('\n')).toMatch(/vm nr: task \d+ failed: the event log could not be written/);
    await view.until(() => [...view.tasks.values()].every((t) => t.status !== 'pending'));
    // The VM goes on: the next operation runs.
    expect((await view.taskEnded(await submit('nr', { kind: 'VM.delay', delay: 0 }))).status).toBe('completed');
  });

  it('with a backend without the debugTriggers capability, every DEBUG.trigger is Unimplemented (§8.4)', async () => {
    await agent.close();
    const plain = simulatorAs('no hooks', { debugTriggers: false, journalsEachAtom: false });
    agent = await HostAgent.start({ stores, hostId: 'h1', backend: plain });
    ok(await add('u'));
    const head = await stores.log.head();
    for (const [cmd, args] of [['reboot', ['u']], ['no-ack', ['u', 'hang']], ['check-vbd-plug-ordering', ['u']], ['set-cancel-trigger', ['x', '1']], ['explode', []]] as const) {
      expect(await agent.execute({ dbg: 't', command: { type: 'DebugTrigger', cmd, args } }), cmd).toMatchObject({ ok: false, error: ['Unimplemented', cmd] });
    }
    expect(await stores.log.head()).toBe(head);
  });

  it('removes a VM with a self-destroying task', async () => {
    ok(await add('e'));
    const remove = await submit('e', { kind: 'VM.remove', autoDestroy: true });
    await view.until(() => view.vms.get('e')?.config === undefined && view.tasks.get(remove) === undefined);
    expect(view.vms.get('e')?.config).toBeUndefined();
  });

  it('after a restart resumes queued work and fails the task that was executing', async () => {
    ok(await add('f'));
    const start = await submit('f', { kind: 'VM.start', paused: false, unpause: true });
    await view.taskEnded(start);
    await agent.close();
    // Simulate a crash mid-operation: a task recorded as started, with no end.
    const { encodeBatch, Streams } = await import('@xenops/core');
    const audit = { dbg: 'crashed', timeMs: Date.now(), host: 'h1', actor: 'vm/f' };
    const created = await stores.log.append({
      stream: Streams.vm('f'),
      data: encodeBatch([{ audit, body: { type: 'TaskCreated', vmId: 'f', operation: { kind: 'VM.pause' }, host: 'h1', ctimeMs: Date.now() } }]),
      expectedLastSeq: await stores.log.lastSeqOf(Streams.vm('f')),
    });
    await stores.log.append({
      stream: Streams.vm('f'),
      data: encodeBatch([{ audit, body: { type: 'TaskStarted', taskId: String(created), startedMs: Date.now() } }]),
      expectedLastSeq: created,
    });
    agent = await HostAgent.start({ stores, hostId: 'h1' });
    const interrupted = await view.taskEnded(String(created));
    expect(interrupted.error).toEqual(['Internal_error', 'Interrupted by service restart']);
    // The state check that follows finds a survivable domain and leaves it as it is.
    await view.until(() => [...view.tasks.values()].every((t) => t.status !== 'pending'));
    expect(powerStateOf(view.vms.get('f')!)).toBe('Running');
  });
});

describe('HostAgent on a log damaged on disk', () => {
  let dir: string;
  let stores: Stores;
  let agent: HostAgent | undefined;
  let view: LogView | undefined;
  afterEach(async () => {
    await agent?.close();
    await view?.close();
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  const audit = { dbg: 't', timeMs: 0, host: 'h1', actor: 'test' };
  const QUARANTINED = /^VM q cannot be used: its log is damaged at seq 3 \(undecodable event batch: .+\); see xenops verify$/;

  it('starts, refuses every command of the damaged VM naming the seq, runs none of its work, and serves the others', async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-agent-damage-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    const append = (stream: string, body: Parameters<typeof encodeBatch>[0][number]['body']) =>
      stores.log.append({ stream, data: encodeBatch([{ audit, body }]) });
    await append(Streams.vm('q'), { type: 'VmAdded', vmId: 'q', config: vmConfig('q') }); // 1
    await append(Streams.vm('ok'), { type: 'VmAdded', vmId: 'ok', config: vmConfig('ok') }); // 2
    await append(Streams.vm('q'), { type: 'GuestModeChanged', vmId: 'q', mode: 'ignore' }); // 3, damaged below
    // Work queued for this host on the damaged VM, as a process stopped with it pending left it.
    await append(Streams.vm('q'), { type: 'TaskCreated', vmId: 'q', operation: { kind: 'VM.start', paused: false, unpause: false }, host: 'h1', ctimeMs: 0 }); // 4
    await append(Streams.host('h1'), { type: 'HostSettingChanged', hostId: 'h1', key: 'pool_size', value: 3 }); // 5, damaged below
    await stores.close();
    const db = new Database(join(dir, 'xenops.db'));
    for (const seq of [3, 5]) db.prepare('UPDATE events SET data = ? WHERE seq = ?').run(Buffer.from('this is not an event batch'), seq);
    db.close();

    stores = await openEmbeddedStores({ dataDir: dir });
    view = new LogView(stores);
    const lines: string[] = [];
    agent = await HostAgent.start({ stores, hostId: 'h1', logger: (l) => lines.push(l) });
    const said = lines.join('\n');
    expect(said).toMatch(/the log is damaged at seq 3 \(vm\/q\): undecodable event batch: .*; VM q is quarantined/);
    expect(said).toMatch(/the log is damaged at seq 5 \(host\/h1\)/);
    expect(said).toMatch(/1 quarantined by a damaged log/);

    const refused = async (command: Parameters<HostAgent['execute']>[0]['command']) => {
      const reply = await agent!.execute({ dbg: 't', command });
      expect(reply.ok, command.type).toBe(false);
      const error = (reply as { error: [string, string] }).error;
      expect(error[0]).toBe('Internal_error');
      expect(error[1]).toMatch(QUARANTINED);
    };
    await refused({ type: 'SubmitOperation', vmId: 'q', operation: { kind: 'VM.start', paused: false, unpause: false } });
    await refused({ type: 'AddVm', config: vmConfig('q'), refuseExisting: false });
    await refused({ type: 'AddDevice', device: { kind: 'vbd', config: { id: ['q', 'xvda'] } } as never });
    await refused({ type: 'CancelTask', vmId: 'q', taskId: '4' });
    await refused({ type: 'SubmitOperation', vmId: 'q', operation: { kind: 'VM.remove', autoDestroy: true } });

    // The other VM's whole lifecycle.
    const submit = async (operation: Operation) => {
      const reply = await agent!.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId: 'ok', operation } });
      if (!reply.ok) throw new Error(JSON.stringify(reply.error));
      return (await view!.taskEnded(reply.value as string)).status;
    };
    expect(await submit({ kind: 'VM.start', paused: false, unpause: false })).toBe('completed');
    expect(await submit({ kind: 'VM.unpause' })).toBe('completed');
    expect(powerStateOf(view.vms.get('ok')!)).toBe('Running');
    expect(await submit({ kind: 'VM.shutdown', delay: 5, fallbackToHard: false })).toBe('completed');
    await submit({ kind: 'VM.remove' });
    expect(view.vms.get('ok')?.config).toBeUndefined();
    // Nothing was ever written to the quarantined VM's stream: its queued start never ran.
    expect(await stores.log.lastSeqOf(Streams.vm('q'))).toBe(4);
  });

  it('started from a read model\'s fold, it scans for damage what that read model did not read itself, and nothing else', async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-agent-damage-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    const append = (stream: string, body: Parameters<typeof encodeBatch>[0][number]['body']) =>
      stores.log.append({ stream, data: encodeBatch([{ audit, body }]) });
    await append(Streams.vm('q'), { type: 'VmAdded', vmId: 'q', config: vmConfig('q') }); // 1
    await append(Streams.vm('q'), { type: 'VmOwnerChanged', vmId: 'q', host: 'h1', previousHost: '' }); // 2
    await append(Streams.vm('q'), { type: 'GuestModeChanged', vmId: 'q', mode: 'ignore' }); // 3, damaged below
    // The read model's fold (as its snapshot had it, before the damage) and an older snapshot of the agent's.
    const replayed = await replayLog(stores.log);
    const fold: FoldSnapshot = { seq: replayed.seq, vms: [...replayed.vms.values()], tasks: [], domids: [], hosts: [], observers: {} };
    await saveAgentSnapshot(stores.snapshots, 'h1', { seq: 1, vms: new Map(), host: emptyHost(), lastDomid: 0 });
    await stores.close();
    const db = new Database(join(dir, 'xenops.db'));
    db.prepare('UPDATE events SET data = ? WHERE seq = ?').run(Buffer.from('this is not an event batch'), 3);
    db.close();

    stores = await openEmbeddedStores({ dataDir: dir });
    const lines: string[] = [];
    // The read model restored a snapshot at seq 3: it did not read seqs 1..3 itself.
    agent = await HostAgent.start({ stores, hostId: 'h1', logger: (l) => lines.push(l), foldOfReadModel: async () => ({ fold, readAfter: 3 }) });
    expect(lines.join('\n')).toMatch(/recovered 1 VM\(s\) from the read model's fold at seq 3 and 0 log message\(s\)/);
    // No command needed: the scan of what the fold covers finds it.
    const damaged = /agent h1: the log is damaged at seq 3 \(vm\/q\)/;
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => damaged.test(l)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(lines.join('\n')).toMatch(damaged);
    const reply = await agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId: 'q', operation: { kind: 'VM.start', paused: false, unpause: false } } });
    expect(reply.ok ? undefined : (reply as { error: [string, string] }).error[1]).toMatch(QUARANTINED);
    await agent.close();
    agent = undefined;

    // A read model that read every message itself has the damage in its fold: the agent scans nothing.
    await append(Streams.vm('ok'), { type: 'VmAdded', vmId: 'ok', config: vmConfig('ok') }); // 4
    lines.length = 0;
    agent = await HostAgent.start({ stores, hostId: 'h1', logger: (l) => lines.push(l), foldOfReadModel: async () => ({ fold: { ...fold, seq: 4 }, readAfter: 0 }) });
    await new Promise((r) => setTimeout(r, 300));
    expect(lines.join('\n')).toMatch(/from the read model's fold at seq 4/);
    expect(lines.join('\n')).not.toMatch(damaged);
  });
});
