import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeBatch, Errors, type CommandReply, type LogEvent, type Operation, type Stores } from '@xenops/core';
import type { Backend } from '../backend/backend.js';
import { HostAgent } from '../agent/host-agent.js';
import { LogView, openTestStores, simulatorAs, vmConfig } from '../testing/fixtures.js';

/** A task that cannot wait, on the simulator, runs in the call that queued it (`instantAtoms`). */
describe('a task run in the call that queued it', () => {
  let stores: Stores;
  let view: LogView;
  let dispose: () => Promise<void>;
  let agent: HostAgent | undefined;

  beforeEach(async () => {
    ({ stores, view, dispose } = await openTestStores());
  });
  afterEach(async () => {
    await agent?.close();
    await dispose();
  });

  const ok = (r: CommandReply) => {
    if (!r.ok) throw new Error(`command failed: ${JSON.stringify(r.error)}`);
    return r.value;
  };
  const start = async (backend?: Backend) => {
    agent = await HostAgent.start({ stores, hostId: 'h1', ...(backend ? { backend } : {}) });
    return agent;
  };
  const add = (a: HostAgent, id: string) => a.execute({ dbg: 't', command: { type: 'AddVm', config: vmConfig(id), refuseExisting: false } });
  const submit = async (a: HostAgent, vmId: string, operation: Operation) => ok(await a.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId, operation } })) as string;
  /** Every message of a VM's stream, decoded as every fold reads it. */
  const messagesOf = async (vmId: string): Promise<LogEvent[][]> => {
    const out: LogEvent[][] = [];
    for await (const m of stores.log.readStream(`vm/${vmId}`)) out.push(decodeBatch(m.seq, m.data));
    return out;
  };
  const types = (events: readonly LogEvent[]) => events.map((e) => e.body.type);

  it('is created, run and ended in one message, whose seq is its id', async () => {
    const a = await start();
    ok(await add(a, 'one'));
    const id = await submit(a, 'one', { kind: 'VM.start', paused: false, unpause: true });
    // Ended before the call returned.
    expect(view.tasks.get(id)?.status ?? (await view.taskEnded(id)).status).toBe('completed');
    const messages = await messagesOf('one');
    const last = messages.at(-1)!;
    expect(String(last[0]!.seq)).toBe(id);
    expect(types(last)).toEqual(expect.arrayContaining(['TaskCreated', 'TaskStarted', 'DomainCreated', 'DomainUnpaused', 'TaskCompleted']));
    // Every event names the task by its real id, as the folds read it.
    for (const e of last) {
      if ('taskId' in e.body) expect(e.body.taskId).toBe(id);
      if (e.audit.actor.startsWith('task/')) expect(e.audit.actor).toBe(`task/${id}`);
    }
    expect(view.vms.get('one')?.domain?.paused).toBe(false);
    // The actor's own fold agrees: the next task runs against the state this one left.
    const shutdown = await submit(a, 'one', { kind: 'VM.shutdown', fallbackToHard: false });
    expect((await view.taskEnded(shutdown)).status).toBe('completed');
    expect(view.vms.get('one')?.domain).toBeUndefined();
  });

  it('a task that may wait is queued first and run by the VM’s machine: two messages', async () => {
    const a = await start();
    ok(await add(a, 'two'));
    const id = await submit(a, 'two', { kind: 'VM.delay', delay: 0.05 });
    expect((await view.taskEnded(id)).status).toBe('completed');
    const messages = await messagesOf('two');
    const created = messages.findIndex((m) => String(m[0]!.seq) === id);
    expect(types(messages[created]!)).toEqual(['TaskCreated']);
    expect(messages.slice(created + 1).flatMap(types)).toEqual(expect.arrayContaining(['TaskStarted', 'TaskCompleted']));
  });

  it('a task queued behind another waits its turn, in order', async () => {
    const a = await start();
    ok(await add(a, 'three'));
    const delay = await submit(a, 'three', { kind: 'VM.delay', delay: 0.1 });
    const startTask = await submit(a, 'three', { kind: 'VM.start', paused: true, unpause: false });
    expect((await view.taskEnded(startTask)).status).toBe('completed');
    expect(view.ended.map((e) => e.id)).toEqual([delay, startTask]);
    const created = (await messagesOf('three')).find((m) => String(m[0]!.seq) === startTask)!;
    expect(types(created)).toEqual(['TaskCreated']);
  });

  it('a failure that queues a state check writes the check in a message of its own (one task per message)', async () => {
    const failingBuild = simulatorAs('failing build', { debugTriggers: false, journalsEachAtom: false, instantAtoms: true }, (effect, _ctx, simulate) =>
      effect.kind === 'VM_build' ? Promise.reject(Errors.internal('build refused')) : simulate(),
    );
    const a = await start(failingBuild);
    ok(await add(a, 'four'));
    const id = await submit(a, 'four', { kind: 'VM.start', paused: false, unpause: true });
    const failed = await view.taskEnded(id);
    expect(failed.error).toEqual(['Internal_error', 'build refused']);
    const messages = await messagesOf('four');
    const own = messages.findIndex((m) => String(m[0]!.seq) === id);
    expect(types(messages[own]!)).toEqual(expect.arrayContaining(['TaskCreated', 'TaskStarted', 'TaskFailed']));
    expect(types(messages[own]!).filter((t) => t === 'TaskCreated')).toHaveLength(1);
    const check = messages[own + 1]!;
    expect(types(check)).toEqual(['TaskCreated']);
    expect(check[0]!.audit.dbg).toMatch(/^internal:/);
    // The check (run by the VM's machine, destroying itself at its end) tears the half-built domain down.
    await view.until(() => view.vms.get('four')?.domain === undefined && view.vms.get('four')?.queue.length === 0 && !view.vms.get('four')?.running);
  });

  it('is not used by a backend whose atoms act on the world', async () => {
    const a = await start(simulatorAs('journaled', { debugTriggers: false, journalsEachAtom: true }));
    ok(await add(a, 'five'));
    const id = await submit(a, 'five', { kind: 'VM.start', paused: true, unpause: false });
    expect((await view.taskEnded(id)).status).toBe('completed');
    const created = (await messagesOf('five')).find((m) => String(m[0]!.seq) === id)!;
    expect(types(created)).toEqual(['TaskCreated']);
  });
});
