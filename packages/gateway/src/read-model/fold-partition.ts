/**
 * Splitting a start's fold in two (see `Projection.start`): which half of the log a message goes
 * to, and how to tell afterwards that the halves were independent.
 *
 * A VM's stream, and every task it creates, belong to the VM's half (its id hashed; the two
 * halves are not equal: see FIRST_HALF_SIXTEENTHS). The streams that name a VM in their events go
 * with it: refused tasks (`task/unrouted`, later destroyed through the VM's stream) and UPDATES
 * refreshes. Everything else (hosts, barriers, evacuation
 * tasks, streams a later release may add) is the first half's. A task event of one half about a
 * task the other half created would be folded wrong: each half lists the tasks it met without a
 * record of them, and a fold where either met one is done again, in order.
 */
import { readMessage, Streams, taskIdOf, type FoldStep, type StoredMessage } from '@xenops/core';

export type FoldHalf = 0 | 1;

const VM_PREFIX = 'vm/';
const UNROUTED = Streams.task('unrouted');
const REFRESH = 'updates/refresh';

/**
 * The first "half" (the thread that also reads the log) folds 5/16 of the VMs, the worker the
 * rest: reading costs the reading thread about half as much as folding everything on NATS
 * (nats.js parses every message there). Starts over a 1,000,000-event NATS log, five of each
 * alternated on a quiet machine: median 4.65 s with 5/16 or 6/16, 4.76 s with 4/16, 5.6-5.9 s
 * with a half; embedded starts did not tell the shares apart.
 */
const FIRST_HALF_SIXTEENTHS = 5;

/** FNV-1a of the VM id's UTF-16 units: every message of a VM goes to the same half. */
export function halfOfVm(vmId: string): FoldHalf {
  let h = 0x811c9dc5;
  for (let i = 0; i < vmId.length; i++) h = Math.imul(h ^ vmId.charCodeAt(i), 0x01000193);
  return (h & 15) < FIRST_HALF_SIXTEENTHS ? 0 : 1;
}

/** The half a message of the log is folded in. */
export function halfOf(m: StoredMessage): FoldHalf {
  if (m.stream.startsWith(VM_PREFIX)) return halfOfVm(m.stream.slice(VM_PREFIX.length));
  if (m.stream !== UNROUTED && m.stream !== REFRESH) return 0;
  // Rare streams whose events name their VM: read here to route (a damaged one is the first half's).
  const read = readMessage(m);
  const named = read.events?.find((e) => 'vmId' in e.body && typeof e.body.vmId === 'string' && e.body.vmId !== '');
  return named && 'vmId' in named.body ? halfOfVm(named.body.vmId as string) : 0;
}

/** The tasks one half of a fold met without having a record of them. */
export interface HalfTasks {
  readonly foreign: ReadonlySet<string>;
}

/**
 * A half's task events about tasks it holds no record of. A task's events all come after its
 * `TaskCreated` and in its VM's stream (or with its refused creation), so in a log whose halves
 * are independent there are none: one is either the other half's task (the halves depend on each
 * other) or a task neither created (damage). Either way the fold is done again in order, which
 * is what a cross-half reference needs and costs nothing when the log has none; no half keeps
 * the ids of every task it created to tell the two apart.
 */
export class TaskReferences implements HalfTasks {
  readonly foreign = new Set<string>();

  note(step: FoldStep): void {
    if (step.taskBefore !== undefined || step.event.body.type === 'TaskCreated') return;
    const id = taskIdOf(step.event);
    if (id !== undefined) this.foreign.add(id);
  }

  /** Whether either half met a task it has no record of. */
  static cross(a: HalfTasks, b: HalfTasks): boolean {
    return a.foreign.size > 0 || b.foreign.size > 0;
  }
}
