import { describe, expect, it } from 'vitest';
import type { DynamicId } from '@xenops/core';
import { UpdateSet } from './update-set.js';

const vm = (id: string): DynamicId => ['Vm', id];
const vbd = (v: string, d: string): DynamicId => ['Vbd', [v, d]];
const vif = (v: string, d: string): DynamicId => ['Vif', [v, d]];
const task = (id: string): DynamicId => ['Task', id];

describe('UpdateSet (API.md §7.7)', () => {
  it('reproduces the worked example of §7.7', () => {
    const s = new UpdateSet();
    s.apply(40, { signals: [vbd('vm1', 'xvda')] });
    s.apply(41, { signals: [vm('vm1')] });
    s.apply(42, { barrierInjected: { barrierId: 7, entries: s.entriesOfVm('vm1') } });
    s.apply(43, { signals: [vm('vm1')] });
    s.apply(44, { signals: [task('39')] });
    expect(s.get(39)).toEqual([[[7, [vbd('vm1', 'xvda'), vm('vm1')]]], [vbd('vm1', 'xvda'), vm('vm1'), task('39')], 44]);
    expect(s.get(41)).toEqual([[[7, []]], [vm('vm1'), task('39')], 44]);
    expect(s.get(44)).toEqual([[], [], 44]);
    expect(s.hasNewerThan(44)).toBe(false);
    expect(s.hasNewerThan(43)).toBe(true);
  });

  it('merges the set of the other half of a fold: the same answers as one set of both; refused when an id is in both', () => {
    const both = new UpdateSet();
    const a = new UpdateSet();
    const b = new UpdateSet();
    const steps: Array<[UpdateSet, number, Parameters<UpdateSet['apply']>[1]]> = [
      [a, 1, { signals: [vm('a'), vbd('a', 'xvda')] }],
      [b, 2, { signals: [vm('b')] }],
      [a, 3, { barrierInjected: { barrierId: 9, entries: [{ id: vm('a'), seq: 1 }] } }],
      [b, 4, { signals: [task('4'), vif('b', 'eth0')] }],
      [a, 5, { removes: [vbd('a', 'xvda')] }],
      [b, 6, { signals: [vm('b')] }],
    ];
    for (const [half, seq, change] of steps) {
      half.apply(seq, change);
      both.apply(seq, change);
    }
    expect(a.mergeState(b.exportState())).toBe(true);
    for (const last of [0, 1, 3, 4, 6]) expect(a.get(last)).toEqual(both.get(last));
    expect(a.newest).toBe(both.newest);
    expect(a.size).toBe(both.size);
    const c = new UpdateSet();
    c.apply(7, { signals: [vm('b')] });
    const before = a.get(0);
    expect(a.mergeState(c.exportState())).toBe(false);
    expect(a.get(0)).toEqual(before);
  });

  it('coalesces repeated changes: only the latest seq counts', () => {
    const s = new UpdateSet();
    for (let seq = 1; seq <= 5; seq++) s.apply(seq, { signals: [vm('a')] });
    s.apply(6, { signals: [vm('b')] });
    expect(s.get(0)).toEqual([[], [vm('a'), vm('b')], 6]);
    expect(s.get(5)).toEqual([[], [vm('b')], 6]);
    expect(s.size).toBe(2);
  });

  it('orders ids of one seq: Vm, Vbd, Vif, Pci, Vgpu, Vusb, Task, then by id', () => {
    const s = new UpdateSet();
    s.apply(3, { signals: [task('10'), task('9'), vif('b', 'x'), vbd('b', '1'), vbd('a', '2'), vm('z'), vm('b')] });
    s.apply(2, { signals: [] });
    expect(s.get(0)[1]).toEqual([vm('b'), vm('z'), vbd('a', '2'), vbd('b', '1'), vif('b', 'x'), task('9'), task('10')]);
  });

  it('removal deletes an object; next_id is the largest seq returned, last_id when nothing is', () => {
    const s = new UpdateSet();
    s.apply(10, { signals: [vm('a'), task('10')] });
    s.apply(11, { signals: [task('10')] });
    s.apply(12, { removes: [task('10')] });
    expect(s.get(0)).toEqual([[], [vm('a')], 10]);
    expect(s.get(10)).toEqual([[], [], 10]);
    expect(s.hasNewerThan(10)).toBe(false);
    // a task ended and destroyed by one write is gone
    s.apply(13, { signals: [task('13')], removes: [task('13')] });
    expect(s.get(12)).toEqual([[], [], 12]);
  });

  it('barriers: own seq, snapshot filtered by last_id, oldest first, removed by id (all that share it)', () => {
    const s = new UpdateSet();
    s.apply(1, { signals: [vm('a')] });
    s.apply(2, { signals: [vbd('a', 'xvda'), task('2')] });
    const snap = s.entriesOfVm('a');
    expect(snap.map((e) => e.id)).toEqual([vm('a'), vbd('a', 'xvda')]); // tasks excluded
    s.apply(3, { barrierInjected: { barrierId: 5, entries: snap } });
    s.apply(4, { barrierInjected: { barrierId: 6, entries: [] } });
    s.apply(5, { barrierInjected: { barrierId: 5, entries: s.entriesOfVm('unknown') } });
    expect(s.get(1)).toEqual([
      [
        [5, [vbd('a', 'xvda')]],
        [6, []],
        [5, []],
      ],
      [vbd('a', 'xvda'), task('2')],
      5,
    ]);
    s.apply(6, { barrierRemoved: 5 });
    s.apply(7, { barrierRemoved: 99 });
    expect(s.get(0)).toEqual([[[6, []]], [vm('a'), vbd('a', 'xvda'), task('2')], 4]);
  });

  it('stays correct when the journal is compacted', () => {
    const s = new UpdateSet();
    for (let seq = 1; seq <= 5000; seq++) s.apply(seq, { signals: [vm(`v${seq % 7}`)] });
    expect(s.get(0)[1]).toHaveLength(7);
    expect(s.get(4995)).toEqual([[], [vm('v5'), vm('v6'), vm('v0'), vm('v1'), vm('v2')], 5000]);
  });
});
