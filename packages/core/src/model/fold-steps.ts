import type { LogEvent } from '../events/event.js';
import type { StoredMessage } from '../store/event-log.js';
import { damagedMessage, noteDamage, readMessage } from './log-damage.js';
import { isLive, type FoldState } from './replay.js';
import { evolveTask, taskIdOf, type TaskRecord } from './task-record.js';
import { emptyVm, evolveVm, vmIdOf, type VmAggregate } from './vm-aggregate.js';

/** One event as the fold saw it: the states it changed, before and after. */
export interface FoldStep {
  readonly event: LogEvent;
  readonly stream: string;
  /**
   * Events of a `vm/<id>` stream: the VM aggregate before and after the event. Events of other
   * streams that name a VM: its current aggregate as both (when known).
   */
  readonly vmBefore?: VmAggregate;
  readonly vmAfter?: VmAggregate;
  /** The record of the task the event is about (`taskIdOf`), before and after. */
  readonly taskBefore?: TaskRecord;
  readonly taskAfter?: TaskRecord;
}

/**
 * Folds the events of one message into maps of VMs and tasks, reporting each event's before and
 * after: the fold of the read model and of the change stream's replays (`foldMessage` is the
 * same fold without the reports, for plain replays).
 */
export function foldMessageSteps(
  state: { readonly vms: Map<string, VmAggregate>; readonly tasks: Map<string, TaskRecord> },
  stream: string,
  events: readonly LogEvent[],
): FoldStep[] {
  const steps: FoldStep[] = [];
  const vmId = stream.startsWith('vm/') ? stream.slice(3) : undefined;
  let vm = vmId === undefined ? undefined : (state.vms.get(vmId) ?? emptyVm(vmId));
  // Past the damage of its stream, a quarantined VM's messages change nothing (as in `foldMessage`).
  if (vm?.quarantine) return steps;
  for (const event of events) {
    let vmBefore: VmAggregate | undefined;
    let vmAfter: VmAggregate | undefined;
    if (vm) {
      vmBefore = vm;
      vm = evolveVm(vm, event);
      vmAfter = vm;
    } else {
      const named = vmIdOf(event.body);
      vmBefore = vmAfter = named === undefined ? undefined : state.vms.get(named);
    }
    let taskBefore: TaskRecord | undefined;
    let taskAfter: TaskRecord | undefined;
    const taskId = taskIdOf(event);
    if (taskId !== undefined) {
      taskBefore = state.tasks.get(taskId);
      taskAfter = evolveTask(taskBefore, event);
      if (taskAfter) state.tasks.set(taskId, taskAfter);
      else state.tasks.delete(taskId);
    }
    // Assigned, not spread in: no temporary object per field and event (a long fold makes millions).
    const step: { -readonly [K in keyof FoldStep]: FoldStep[K] } = { event, stream };
    if (vmBefore) step.vmBefore = vmBefore;
    if (vmAfter) step.vmAfter = vmAfter;
    if (taskBefore) step.taskBefore = taskBefore;
    if (taskAfter) step.taskAfter = taskAfter;
    steps.push(step);
  }
  if (vm && vmId !== undefined) {
    if (isLive(vm)) state.vms.set(vmId, vm);
    else state.vms.delete(vmId);
  }
  return steps;
}

/**
 * `foldMessageSteps` of a stored message, tolerant as `foldMessage` is: a message that cannot be
 * read or folded is noted as damage (no steps), never thrown.
 */
export function foldStoredMessageSteps(state: FoldState, m: StoredMessage): FoldStep[] {
  const read = readMessage(m);
  if (read.damage) {
    noteDamage(state, read.damage);
    return [];
  }
  try {
    return foldMessageSteps(state, m.stream, read.events);
  } catch (e) {
    noteDamage(state, damagedMessage(m.stream, m.seq, e));
    return [];
  }
}
