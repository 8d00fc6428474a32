import { decodeBatch } from '../events/codec.js';
import type { EventLog } from '../store/event-log.js';
import type { SnapshotStore } from '../store/snapshot-store.js';
import { foldBase } from './fold-base.js';
import { evolveTask, taskIdOf, type TaskRecord } from './task-record.js';
import { emptyVm, evolveVmAll, type VmAggregate } from './vm-aggregate.js';

export interface ReplayedState {
  readonly vms: Map<string, VmAggregate>;
  readonly tasks: Map<string, TaskRecord>;
  /** Seq of the last message folded (0 for an empty log). */
  readonly seq: number;
  readonly messages: number;
  readonly events: number;
}

const VM_STREAM = 'vm/';

/** Folds one message into maps of VMs and tasks: the one fold every reader of the log shares. */
export function foldMessage(state: { vms: Map<string, VmAggregate>; tasks: Map<string, TaskRecord> }, stream: string, seq: number, data: Uint8Array): number {
  const events = decodeBatch(seq, data);
  const vmId = stream.startsWith(VM_STREAM) ? stream.slice(VM_STREAM.length) : undefined;
  // The VM's events of one message fold in one immutable update.
  const vm = vmId === undefined ? undefined : evolveVmAll(state.vms.get(vmId) ?? emptyVm(vmId), events);
  for (const event of events) {
    const taskId = taskIdOf(event);
    if (taskId === undefined) continue;
    const next = evolveTask(state.tasks.get(taskId), event);
    if (next) state.tasks.set(taskId, next);
    else state.tasks.delete(taskId);
  }
  if (vm && vmId !== undefined) {
    if (isLive(vm)) state.vms.set(vmId, vm);
    else state.vms.delete(vmId);
  }
  return events.length;
}

/** A VM worth keeping in a read model: registered, or with a domain or work left. */
export function isLive(vm: VmAggregate): boolean {
  return vm.config !== undefined || vm.domain !== undefined || vm.queue.length > 0 || vm.running !== undefined;
}

/**
 * Replays the log from scratch up to `toSeq` (default: the head when called). Once retention has
 * truncated the log, "from scratch" starts at the fold snapshot that covers what was deleted.
 */
export async function replayLog(log: EventLog, toSeq?: number, snapshots?: SnapshotStore): Promise<ReplayedState> {
  const base = await foldBase(log, snapshots, toSeq);
  const state = { vms: base.vms, tasks: base.tasks };
  let seq = base.seq;
  let messages = 0;
  let events = 0;
  for await (const m of log.read(base.seq, toSeq)) {
    events += foldMessage(state, m.stream, m.seq, m.data);
    seq = m.seq;
    messages++;
  }
  return { ...state, seq, messages, events };
}
