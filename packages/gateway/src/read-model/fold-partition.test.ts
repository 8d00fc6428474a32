import { encodeBatch, Streams, type FoldStep, type LogEvent } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import { halfOf, halfOfVm, TaskReferences } from './fold-partition.js';

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };
const ids = Array.from({ length: 64 }, (_, i) => `vm-${i}`);
const inHalf = (h: 0 | 1) => ids.find((id) => halfOfVm(id) === h)!;

describe('the halves of a start fold', () => {
  it('splits VMs by their id, about 5/16 to the first half (the reading thread)', () => {
    const many = Array.from({ length: 4096 }, (_, i) => `${i}-${i * 7919}`);
    const first = many.filter((id) => halfOfVm(id) === 0).length / many.length;
    expect(first).toBeGreaterThan(0.26);
    expect(first).toBeLessThan(0.36);
    const uuids = Array.from({ length: 4096 }, () => crypto.randomUUID());
    expect(uuids.filter((id) => halfOfVm(id) === 0).length / uuids.length).toBeGreaterThan(0.26);
    expect(uuids.filter((id) => halfOfVm(id) === 0).length / uuids.length).toBeLessThan(0.36);
  });

  it("routes a VM's stream, and the refused tasks and refreshes naming it, to the VM's half; everything else to the first", () => {
    for (const h of [0, 1] as const) {
      const vm = inHalf(h);
      expect(halfOf({ seq: 1, stream: Streams.vm(vm), data: new Uint8Array() })).toBe(h);
      const refused = encodeBatch([{ audit, body: { type: 'TaskCreated', vmId: vm, operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 } }]);
      expect(halfOf({ seq: 2, stream: Streams.task('unrouted'), data: refused })).toBe(h);
      expect(halfOf({ seq: 3, stream: 'updates/refresh', data: encodeBatch([{ audit, body: { type: 'VmRefreshed', vmId: vm } }]) })).toBe(h);
    }
    const one = inHalf(1);
    expect(halfOf({ seq: 4, stream: Streams.barriers(), data: encodeBatch([{ audit, body: { type: 'BarrierInjected', barrierId: 1, vmId: one, entries: [] } }]) })).toBe(0);
    for (const stream of [Streams.host('h1'), Streams.evacuations(), 'some/new-stream']) expect(halfOf({ seq: 5, stream, data: new Uint8Array() })).toBe(0);
    // An unreadable refused task names no VM: the first half notes it as damage.
    expect(halfOf({ seq: 6, stream: Streams.task('unrouted'), data: Buffer.from('garbage') })).toBe(0);
  });

  it('notes the tasks a half meets without a record of them; halves that met any depend on each other', () => {
    const step = (seq: number, body: LogEvent['body'], taskBefore?: FoldStep['taskBefore']): FoldStep => ({
      event: { seq, audit, body },
      stream: 'vm/x',
      ...(taskBefore ? { taskBefore } : {}),
    });
    const a = new TaskReferences();
    const b = new TaskReferences();
    const record = { id: '10' } as unknown as FoldStep['taskBefore'];
    a.note(step(10, { type: 'TaskCreated', vmId: 'x', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 }));
    a.note(step(11, { type: 'TaskDestroyed', taskId: '10' }, record));
    a.note(step(12, { type: 'VmRefreshed', vmId: 'x' }));
    expect([...a.foreign]).toEqual([]);
    expect(TaskReferences.cross(a, b)).toBe(false);
    b.note(step(13, { type: 'TaskDestroyed', taskId: '10' }));
    expect(b.foreign).toEqual(new Set(['10']));
    expect(TaskReferences.cross(a, b)).toBe(true);
    expect(TaskReferences.cross(b, a)).toBe(true);
  });
});
