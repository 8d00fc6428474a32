import { describe, expect, it } from 'vitest';
import type { EventBody, LogEvent } from '../events/event.js';
import { emptyVm, evolveVm, evolveVmAll, VM_NEUTRAL, type VmAggregate } from './vm-aggregate.js';

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'a' };
const at = (seq: number, body: EventBody): LogEvent => ({ seq, audit, body }) as LogEvent;

/** A VM with a domain, a queued task and a running one: something for an event to change. */
function busyVm(): VmAggregate {
  let vm = emptyVm('vm1');
  vm = evolveVm(vm, at(1, { type: 'TaskCreated', vmId: 'vm1', operation: { kind: 'VM.start', paused: false, unpause: false }, host: 'h', ctimeMs: 0 } as EventBody));
  vm = evolveVm(vm, at(2, { type: 'TaskCreated', vmId: 'vm1', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 } as EventBody));
  vm = evolveVm(vm, at(3, { type: 'TaskStarted', taskId: '1', startedMs: 0 }));
  vm = evolveVm(vm, at(4, {
    type: 'DomainCreated', vmId: 'vm1', domid: 1, host: 'h', startTime: 0, hvm: true, domainType: 'Domain_HVM', vcpus: 1,
    memoryTarget: 1, memoryLimit: 1, shadowMultiplier: 1, rtcTimeoffset: '', xsdata: [], consoles: [],
  } as EventBody));
  vm = evolveVm(vm, at(4, { type: 'DomainUnpaused', vmId: 'vm1' }));
  return vm;
}

describe('evolveVmAll', () => {
  it('neutral events only move the version, alone or beside a real change', () => {
    const unrelated: EventBody = { type: 'TaskCreated', vmId: 'vm1', operation: { kind: 'VM.unpause' }, host: 'h', ctimeMs: 0 } as EventBody;
    for (const type of VM_NEUTRAL) {
      const neutral = { type, vmId: 'vm1', taskId: '1', hostId: 'h', key: 'k', barrierId: 1 } as unknown as EventBody;
      // Mixed with a real change, the neutral event changes nothing the change does not.
      const mixed = evolveVmAll(busyVm(), [at(9, neutral), at(9, unrelated)]);
      expect(mixed, type).toEqual(evolveVmAll(busyVm(), [at(9, unrelated)]));
      // Alone, it only moves the version.
      const alone = evolveVmAll(busyVm(), [at(9, neutral)]);
      expect(alone, type).toEqual({ ...busyVm(), version: 9 });
    }
  });

  it('moves a started task from the queue to running, keeping the rest queued in order', () => {
    const vm = busyVm();
    expect(vm.running?.taskId).toBe('1');
    expect(vm.queue.map((t) => t.taskId)).toEqual(['2']);
    expect(vm.version).toBe(4);
    const next = evolveVmAll(vm, [at(5, { type: 'TaskCompleted', taskId: '1', duration: 0, resultJson: '', cancelPointsSeen: 0 }), at(5, { type: 'TaskStarted', taskId: '2', startedMs: 0 })]);
    expect(next.running?.taskId).toBe('2');
    expect(next.queue).toEqual([]);
    expect(next.version).toBe(5);
    expect(vm.queue.map((t) => t.taskId)).toEqual(['2']); // the old state is untouched
  });
});

describe('device tables', () => {
  const vbd = (vmId: string, dev: string) => ({ kind: 'vbd', config: { id: [vmId, dev] } });
  const added = (seq: number, vmId: string, dev: string) =>
    at(seq, { type: 'DeviceAdded', vmId, device: vbd(vmId, dev) } as unknown as EventBody);

  it('VMs without devices share one set of empty tables, and adding a device to one VM copies it', () => {
    const a = emptyVm('a');
    const b = emptyVm('b');
    expect(a.devices).toBe(b.devices);
    const a1 = evolveVm(a, added(1, 'a', 'xvda'));
    expect([...a1.devices.vbd.keys()]).toEqual(['xvda']);
    // Neither the other VM nor a new one sees it: the shared tables were not written.
    expect(b.devices.vbd.size).toBe(0);
    expect(emptyVm('c').devices.vbd.size).toBe(0);
    expect(a1.devices).not.toBe(b.devices);
  });

  it('a removed VM goes back to the shared empty tables', () => {
    const a1 = evolveVm(emptyVm('a'), added(1, 'a', 'xvda'));
    const removed = evolveVm(a1, at(2, { type: 'VmRemoved', vmId: 'a' } as EventBody));
    expect(removed.devices).toBe(emptyVm('z').devices);
    expect(a1.devices.vbd.size).toBe(1);
  });
});
