import { describe, expect, it } from 'vitest';
import { batch, damagedLog, foldMessages as fold, GARBAGE, msg, vmConfig as config } from '../testing/damaged-log.js';
import { XenopsError } from '../errors.js';
import { decide } from '../engine/decide.js';
import { decodeFoldSnapshot, encodeFoldSnapshot, FOLD_SNAPSHOT_SCHEMA, type FoldSnapshot } from './fold-snapshot.js';
import { foldStoredMessageSteps } from './fold-steps.js';
import { damagedMessage, foldVmMessage, noteDamage, quarantineError, quarantinesOf, readMessage, type DamagedMessage } from './log-damage.js';
import { foldMessage } from './replay.js';
import { emptyVm, type VmAggregate } from './vm-aggregate.js';
import { serialize } from 'node:v8';
import { gzipSync } from 'node:zlib';

describe('damagedMessage', () => {
  it('attributes a message by its stream key, and gives the error without the repeated seq', () => {
    const e = new Error('seq 3: undecodable event batch: invalid wire type 4 at offset 1');
    expect(damagedMessage('vm/web01', 3, e)).toEqual({ seq: 3, stream: 'vm/web01', vm: 'web01', error: 'undecodable event batch: invalid wire type 4 at offset 1' });
    expect(damagedMessage('task/12', 3, e)).toMatchObject({ task: '12' });
    // An unrouted task's id is the seq of the message that created it.
    expect(damagedMessage('task/unrouted', 30, e)).toMatchObject({ task: '30' });
    expect(damagedMessage('host/h1', 3, e)).toMatchObject({ host: 'h1' });
    const barrier = damagedMessage('updates/barriers', 3, e);
    expect(barrier).toEqual({ seq: 3, stream: 'updates/barriers', error: 'undecodable event batch: invalid wire type 4 at offset 1' });
  });

  it('is what readMessage gives for bytes that are not an event batch, and the events otherwise', () => {
    const bad = readMessage(msg(3, 'vm/a', GARBAGE));
    expect(bad.events).toBeUndefined();
    expect(bad.damage).toMatchObject({ seq: 3, vm: 'a', error: expect.stringMatching(/^undecodable event batch: /) });
    const good = readMessage(msg(1, 'vm/a', batch({ type: 'VmRefreshed', vmId: 'a' })));
    expect(good.damage).toBeUndefined();
    expect(good.events?.map((e) => e.body.type)).toEqual(['VmRefreshed']);
  });
});

describe('a fold of a damaged log', () => {
  it('lists every damaged message, quarantines the damaged VM as it was before, and folds the rest', () => {
    const state = fold(damagedLog());
    expect(state.damage.map((d) => [d.seq, d.stream])).toEqual([
      [3, 'vm/a'],
      [7, 'task/4'],
      [8, 'host/h'],
      [9, 'updates/barriers'],
    ]);
    const a = state.vms.get('a')!;
    // As folded before seq 3; the later task and the removal of its stream change nothing.
    expect(a.quarantine).toEqual({ seq: 3, error: expect.stringMatching(/^undecodable event batch/) });
    expect(a.config?.id).toBe('a');
    expect(a.version).toBe(1);
    expect(a.queue).toEqual([]);
    expect(state.tasks.has('5')).toBe(false);
    // The other VM is folded as if nothing happened.
    const b = state.vms.get('b')!;
    expect(b.quarantine).toBeUndefined();
    expect(b.queue.map((t) => t.taskId)).toEqual(['4']);
    expect(state.tasks.get('4')?.status).toBe('pending');
  });

  it('keeps a VM whose very first message is damaged, so that its id is refused rather than free', () => {
    const state = fold([msg(1, 'vm/lost', GARBAGE), msg(2, 'vm/lost', batch({ type: 'VmAdded', vmId: 'lost', config: config('lost') }))]);
    const lost = state.vms.get('lost')!;
    expect(lost.config).toBeUndefined();
    expect(lost.quarantine?.seq).toBe(1);
  });

  it('is the same through every fold entry point: foldMessage, foldStoredMessageSteps and foldVmMessage', () => {
    const log = damagedLog();
    const byMessage = fold(log);
    const bySteps = { vms: new Map<string, VmAggregate>(), tasks: new Map(), damage: [] as DamagedMessage[] };
    const steps = log.map((m) => foldStoredMessageSteps(bySteps, m));
    expect(bySteps).toEqual(byMessage);
    // A damaged message, and every later message of a quarantined stream, reports no step.
    expect(steps.map((s) => s.length)).toEqual([1, 1, 0, 1, 0, 0, 0, 0, 0]);
    let a = emptyVm('a');
    for (const m of log.filter((m) => m.stream === 'vm/a')) a = foldVmMessage(a, m).vm;
    expect(a).toEqual(byMessage.vms.get('a'));
  });

  it('treats a message the fold cannot apply (a bug) as damage too', () => {
    const state = fold([msg(1, 'vm/a', batch({ type: 'VmAdded', vmId: 'a', config: config('a') }))]);
    // Task records whose lookup throws: a stand-in for a future bug in an evolve function.
    state.tasks.get = () => {
      throw new Error('evolve bug');
    };
    expect(foldMessage(state, 'vm/a', 3, batch({ type: 'TaskStarted', taskId: '9', startedMs: 0 }))).toBe(0);
    expect(state.damage.map((d) => [d.seq, d.stream, d.error])).toEqual([[3, 'vm/a', 'evolve bug']]);
    expect(state.vms.get('a')?.quarantine?.seq).toBe(3);
    expect(state.vms.get('a')?.version).toBe(1);
  });

  it('keeps the report in seq order and the earliest damage as the quarantine when damage is found out of order', () => {
    const state = fold([msg(1, 'vm/a', batch({ type: 'VmAdded', vmId: 'a', config: config('a') })), msg(9, 'vm/a', GARBAGE)]);
    noteDamage(state, damagedMessage('vm/a', 4, new Error('found by a scan')));
    noteDamage(state, damagedMessage('vm/a', 4, new Error('found by a scan')));
    noteDamage(state, damagedMessage('vm/b', 6, new Error('found by a scan')));
    expect(state.damage.map((d) => d.seq)).toEqual([4, 6, 9]);
    expect(state.vms.get('a')?.quarantine).toEqual({ seq: 4, error: 'found by a scan' });
    expect([...quarantinesOf(state.damage)]).toEqual([
      ['a', 4],
      ['b', 6],
    ]);
  });
});

describe('a quarantined VM', () => {
  it('refuses every command with an Internal_error naming the seq', () => {
    const state = fold(damagedLog());
    const a = state.vms.get('a')!;
    const ctx = { hostId: 'h', nowMs: 0 };
    const commands = [
      { type: 'AddVm', config: config('a'), refuseExisting: false },
      { type: 'SubmitOperation', vmId: 'a', operation: { kind: 'VM.start', paused: false, unpause: false } },
      { type: 'AddDevice', device: { kind: 'vbd', config: { id: ['a', 'xvda'] } } },
      { type: 'RemoveDevice', vmId: 'a', kind: 'vbd', dev: 'xvda' },
      { type: 'CancelTask', vmId: 'a', taskId: '5' },
      { type: 'SetGuestMode', vmId: 'a', mode: 'ignore' },
    ] as const;
    for (const command of commands) {
      const decision = decide(a, command as never, ctx);
      expect(decision, command.type).toBeInstanceOf(XenopsError);
      expect((decision as XenopsError).value).toEqual([
        'Internal_error',
        'VM a cannot be used: its log is damaged at seq 3 (undecodable event batch: invalid wire type 4 at offset 1); see xenops verify',
      ]);
    }
    expect(quarantineError('a', a.quarantine!).value).toEqual((decide(a, commands[0] as never, ctx) as XenopsError).value);
    // Its neighbour is not affected.
    expect(decide(state.vms.get('b')!, { type: 'SubmitOperation', vmId: 'b', operation: { kind: 'VM.pause' } }, ctx)).not.toBeInstanceOf(XenopsError);
  });
});

describe('fold snapshots and damage', () => {
  const snap = (damage?: DamagedMessage[]): FoldSnapshot => {
    const state = fold(damagedLog());
    return { seq: 9, vms: [...state.vms.values()], tasks: [...state.tasks.values()], domids: [], hosts: [], observers: {}, ...(damage ? { damage } : {}) };
  };

  it('keep the quarantine and the damage report across an encode and a decode', async () => {
    const state = fold(damagedLog());
    const decoded = (await decodeFoldSnapshot(await encodeFoldSnapshot(snap(state.damage))))!;
    expect(decoded.damage).toEqual(state.damage);
    expect(decoded.vms.find((v) => v.id === 'a')?.quarantine?.seq).toBe(3);
  });

  it('written before damage was reported (no such field) still load, as a snapshot with no damage', async () => {
    const { damage: _, ...old } = snap();
    const bytes = gzipSync(serialize({ schema: FOLD_SNAPSHOT_SCHEMA, ...old }));
    const decoded = (await decodeFoldSnapshot(bytes))!;
    expect(decoded.seq).toBe(9);
    expect(decoded.damage).toBeUndefined();
    // A malformed report is dropped, never trusted.
    const odd = gzipSync(serialize({ schema: FOLD_SNAPSHOT_SCHEMA, ...old, damage: 'x' }));
    expect((await decodeFoldSnapshot(odd))?.damage).toBeUndefined();
  });
});
