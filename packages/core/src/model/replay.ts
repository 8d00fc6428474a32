import type { EventLog } from '../store/event-log.js';
import type { SnapshotStore } from '../store/snapshot-store.js';
import { foldBase } from './fold-base.js';
import { damagedMessage, noteDamage, readMessage, type DamagedMessage } from './log-damage.js';
import { evolveTask, taskIdOf, type TaskRecord } from './task-record.js';
import { emptyVm, evolveVmAll, type VmAggregate } from './vm-aggregate.js';

export interface ReplayedState {
  readonly vms: Map<string, VmAggregate>;
  readonly tasks: Map<string, TaskRecord>;
  /** Seq of the last message folded (0 for an empty log). */
  readonly seq: number;
  readonly messages: number;
  readonly events: number;
  /** The messages the fold could not read, in seq order (those a snapshot it started from recorded too). */
  readonly damage: readonly DamagedMessage[];
}

/** The state every fold of the log builds: VMs, tasks, and the damaged messages met (when listed). */
export interface FoldState {
  readonly vms: Map<string, VmAggregate>;
  readonly tasks: Map<string, TaskRecord>;
  readonly damage?: DamagedMessage[];
}

const VM_STREAM = 'vm/';

/**
 * Folds one message into maps of VMs and tasks: the one fold every reader of the log shares.
 * A message that cannot be read (or folded) is damage, never an exception (log-damage.ts); the
 * messages of a quarantined VM's stream are skipped whole, its tasks' events included.
 */
export function foldMessage(state: FoldState, stream: string, seq: number, data: Uint8Array): number {
  const read = readMessage({ seq, stream, data });
  if (read.damage) {
    noteDamage(state, read.damage);
    return 0;
  }
  const { events } = read;
  const vmId = stream.startsWith(VM_STREAM) ? stream.slice(VM_STREAM.length) : undefined;
  const before = vmId === undefined ? undefined : (state.vms.get(vmId) ?? emptyVm(vmId));
  if (before?.quarantine) return 0;
  try {
    // The VM's events of one message fold in one immutable update.
    const vm = before && evolveVmAll(before, events);
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
  } catch (e) {
    // A decoded message that the fold cannot apply (a bug): as unreadable as a damaged one.
    noteDamage(state, damagedMessage(stream, seq, e));
    return 0;
  }
  return events.length;
}

/** A VM worth keeping in a read model: registered, or with a domain or work left, or quarantined. */
export function isLive(vm: VmAggregate): boolean {
  return vm.config !== undefined || vm.domain !== undefined || vm.queue.length > 0 || vm.running !== undefined || vm.quarantine !== undefined;
}

/**
 * Replays the log from scratch up to `toSeq` (default: the head when called). Once retention has
 * truncated the log, "from scratch" starts at the fold snapshot that covers what was deleted.
 */
export async function replayLog(log: EventLog, toSeq?: number, snapshots?: SnapshotStore): Promise<ReplayedState> {
  const base = await foldBase(log, snapshots, toSeq);
  const state = { vms: base.vms, tasks: base.tasks, damage: [...base.damage] };
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
