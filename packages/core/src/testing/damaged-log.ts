/**
 * A small log with damaged messages, shared by core's fold tests and the stores' tests that damage
 * it on disk.
 */
import type { PendingEvent } from '../events/codec.js';
import { encodeBatch } from '../events/codec.js';
import { Streams, type EventBody } from '../events/event.js';
import { VmT } from '../idl/index.js';
import type { DamagedMessage } from '../model/log-damage.js';
import { foldMessage, type FoldState } from '../model/replay.js';
import type { VmAggregate } from '../model/vm-aggregate.js';
import type { StoredMessage } from '../store/event-log.js';

/** Bytes that are not an EventBatch (protobuf: wire type 4 at offset 1). */
export const GARBAGE = new TextEncoder().encode('this is not an event batch');

export const vmConfig = (id: string) =>
  VmT.decode(
    {
      id,
      ssidref: 0,
      xsdata: {},
      platformdata: {},
      bios_strings: {},
      ty: ['PV', { boot: ['Direct', {}] }],
      suppress_spurious_page_faults: false,
      memory_static_max: 1,
      memory_dynamic_max: 1,
      memory_dynamic_min: 1,
      vcpu_max: 1,
      vcpus: 1,
      scheduler_params: { affinity: [] },
      on_crash: [],
      on_shutdown: [],
      on_reboot: [],
      pci_msitranslate: false,
      pci_power_mgmt: false,
    },
    'vm',
  );

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };
export const batch = (...bodies: EventBody[]) => encodeBatch(bodies.map((body): PendingEvent => ({ audit, body })));
export const msg = (seq: number, stream: string, data: Uint8Array): StoredMessage => ({ seq, stream, data });

/**
 * A log of two VMs, `a` and `b`, where seq 3 (a task creation on `a`) is damaged; `a`'s stream
 * goes on after it (a start, a task created and ended), and `b` has its own task at seq 4.
 */
export function damagedLog(): StoredMessage[] {
  return [
    msg(1, Streams.vm('a'), batch({ type: 'VmAdded', vmId: 'a', config: vmConfig('a') })),
    msg(2, Streams.vm('b'), batch({ type: 'VmAdded', vmId: 'b', config: vmConfig('b') })),
    msg(3, Streams.vm('a'), GARBAGE),
    msg(4, Streams.vm('b'), batch({ type: 'TaskCreated', vmId: 'b', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 })),
    msg(5, Streams.vm('a'), batch({ type: 'TaskCreated', vmId: 'a', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 })),
    msg(6, Streams.vm('a'), batch({ type: 'TaskFailed', taskId: '5', error: 'x', cancelPointsSeen: 0, duration: 0 }, { type: 'VmRemoved', vmId: 'a' })),
    msg(7, Streams.task('4'), GARBAGE),
    msg(8, Streams.host('h'), GARBAGE),
    msg(9, Streams.barriers(), GARBAGE),
  ];
}

export const foldMessages = (messages: readonly StoredMessage[]): FoldState & { damage: DamagedMessage[] } => {
  const state = { vms: new Map<string, VmAggregate>(), tasks: new Map(), damage: [] as DamagedMessage[] };
  for (const m of messages) foldMessage(state, m.stream, m.seq, m.data);
  return state;
};
