import { Errors, XenopsError } from '../errors.js';
import type { EventBody } from '../events/event.js';
import { wireToJson } from '../idl/wire.js';
import type { QueuedTask, VmAggregate } from '../model/vm-aggregate.js';
import { describeAtom } from './atom.js';
import { recordEffect, type AtomContext, type AtomRecord } from './atom-semantics.js';
import type { DecideContext, DecidedEvent, Decision, EngineInput, PerformedAtom } from './decide.js';
import { isGuestShutdownFailure, planMigrationReceive, planOperation } from './plan.js';

type Input<T extends EngineInput['type']> = Extract<EngineInput, { type: T }>;

const reply = () => null;

function queued(vm: VmAggregate, taskId: string): QueuedTask | XenopsError {
  return vm.queue.find((t) => t.taskId === taskId) ?? Errors.internal(`task ${taskId} is not queued on VM ${vm.id}`);
}

function running(vm: VmAggregate, taskId: string): QueuedTask | XenopsError {
  return vm.running?.taskId === taskId ? vm.running : Errors.internal(`task ${taskId} is not running on VM ${vm.id}`);
}

/**
 * The event that ends a task, followed by its destruction when it destroys itself (S/q calls,
 * internal checks) or Task.destroy_on_finish was called while it was pending (§7.1).
 */
function ending(vm: VmAggregate, task: QueuedTask, body: EventBody): DecidedEvent[] {
  const current = vm.running?.taskId === task.taskId ? vm.running : vm.queue.find((t) => t.taskId === task.taskId);
  const events: DecidedEvent[] = [{ task, body }];
  if (task.operation.autoDestroy || current?.destroyOnFinish) events.push({ task, body: { type: 'TaskDestroyed', taskId: task.taskId } });
  return events;
}

/** A state check queued after a failure or a restart (§7.3): an internal task that destroys itself. */
function stateCheck(vm: VmAggregate, reason: string, ctx: DecideContext): DecidedEvent {
  return {
    internal: 'check_state',
    body: { type: 'TaskCreated', vmId: vm.id, operation: { kind: 'VM.check_state', reason, autoDestroy: true }, host: ctx.hostId, ctimeMs: ctx.nowMs },
  };
}

/**
 * The task at the head of the queue starts. Its operation is expanded against the VM as it is
 * now; a refused precondition, or an operation with nothing to do, ends it at once.
 */
export function decideStartTask(vm: VmAggregate, input: Input<'StartTask'>): Decision | XenopsError {
  const task = queued(vm, input.taskId);
  if (task instanceof XenopsError) return task;
  const plan = planOperation(task.operation, vm);
  const started: DecidedEvent = { task, body: { type: 'TaskStarted', taskId: task.taskId, startedMs: input.startedMs } };
  if (!plan.ok) {
    const failed: EventBody = { type: 'TaskFailed', taskId: task.taskId, error: plan.error.value, cancelPointsSeen: 0, duration: 0 };
    return { events: [started, ...ending(vm, task, failed)], reply };
  }
  if (plan.atoms.length === 0) {
    const completed: EventBody = { type: 'TaskCompleted', taskId: task.taskId, duration: 0, resultJson: '', cancelPointsSeen: 0 };
    return { events: [started, ...ending(vm, task, completed)], reply };
  }
  return { events: [started], reply, plan };
}

/**
 * The destination of a migration takes over the task the switch-over passed to it (§7.8). Asked
 * again (the source's wake-up and the destination's own start may both ask), it does nothing.
 */
export function decideReceiveMigration(vm: VmAggregate, input: Input<'ReceiveMigration'>): Decision | XenopsError {
  const task = vm.running;
  if (task?.taskId !== input.taskId || !task.migration?.handedOver) return { events: [], reply };
  const plan = planMigrationReceive(vm);
  if (!plan.ok) return plan.error;
  return { events: [{ task, body: { type: 'MigrationReceived', vmId: vm.id, taskId: task.taskId } }], reply, plan };
}

/** The facts of a performed atom: what its effect's observation means, or the facts it had. */
export function performedFacts(performed: PerformedAtom, vm: VmAggregate, ctx: AtomContext): AtomRecord | XenopsError {
  const { step } = performed;
  switch (step.kind) {
    case 'effect':
      if (!performed.observation) return Errors.internal(`${step.effect.kind} was performed but nothing was observed`);
      return recordEffect(step.effect, performed.observation, vm, ctx);
    case 'facts':
      return step.result === undefined ? { events: step.events } : { events: step.events, result: step.result };
    case 'wait':
      return { events: [] };
  }
}

/**
 * One atom of the running task was carried out: its facts, then the task's progress, or its end
 * when it was the last. A seed clean shutdown or reboot whose guest does not cooperate goes on
 * with the hard power-off (§7.4); any other failure the observation means fails the task.
 */
export function decideAtomPerformed(vm: VmAggregate, input: Input<'AtomPerformed'>, ctx: DecideContext): Decision | XenopsError {
  const task = running(vm, input.taskId);
  if (task instanceof XenopsError) return task;
  let record = performedFacts(input.performed, vm, ctx);
  if (record instanceof XenopsError) {
    const op = task.operation;
    const fallsBackToHard = (op.kind === 'VM.shutdown' || op.kind === 'VM.reboot') && op.fallbackToHard;
    if (!(input.performed.atom.kind === 'VM_shutdown_domain' && fallsBackToHard && isGuestShutdownFailure(record))) return record;
    record = { events: [] };
  }
  const resultJson = record.result === undefined ? input.resultJson : wireToJson(record.result);
  const { taskId, cancelPointsSeen } = input;
  const events: DecidedEvent[] = record.events.map((body) => ({ task, body }));
  const { atom } = input.performed;
  // A migration's switch-over to another host: the task goes on there (§7.8).
  if (atom.kind === 'VM_migrate_handover' && atom.destination !== ctx.hostId) return { events, reply, resultJson };
  if (input.last) {
    events.push(...ending(vm, task, { type: 'TaskCompleted', taskId, duration: input.duration, resultJson, cancelPointsSeen }));
  } else {
    events.push({ task, body: { type: 'TaskProgressed', taskId, progress: input.progress, cancelPointsSeen, cancellable: input.cancellable, atom: describeAtom(atom) } });
  }
  return { events, reply, resultJson };
}

/** From this moment the running task ignores cancellation (§7.1): recorded at once, so Task.stat shows it. */
export function decidePointOfNoReturn(vm: VmAggregate, input: Input<'PointOfNoReturn'>): Decision | XenopsError {
  const task = running(vm, input.taskId);
  if (task instanceof XenopsError) return task;
  const body: EventBody = {
    type: 'TaskProgressed',
    taskId: task.taskId,
    progress: input.progress,
    cancelPointsSeen: input.cancelPointsSeen,
    cancellable: false,
    atom: 'point of no return',
  };
  return { events: [{ task, body }], reply };
}

/**
 * The running task failed (an atom refused, a backend error, a cancellation, a time limit): the
 * facts of the atoms that undid its first steps, its end, and the state check of §7.3 when its
 * plan asks for one.
 */
export function decideTaskFailed(vm: VmAggregate, input: Input<'TaskFailed'>, ctx: DecideContext): Decision | XenopsError {
  const task = running(vm, input.taskId);
  if (task instanceof XenopsError) return task;
  const events: DecidedEvent[] = [];
  for (const undo of input.undone) {
    // Best effort: an undo the backend could not do leaves nothing to record.
    const record = performedFacts(undo, vm, ctx);
    if (!(record instanceof XenopsError)) events.push(...record.events.map((body) => ({ task, body })));
  }
  const failed: EventBody = { type: 'TaskFailed', taskId: task.taskId, error: input.error, cancelPointsSeen: input.cancelPointsSeen, duration: input.duration };
  events.push(...ending(vm, task, failed));
  if (input.checkState) events.push(stateCheck(vm, `${task.operation.kind} failed`, ctx));
  return { events, reply };
}

/**
 * After a restart: the task this host left executing was interrupted (§7.1). It fails, and a
 * state check puts the VM back into a consistent state. Another host's task is not ours to end.
 */
export function decideRecover(vm: VmAggregate, ctx: DecideContext, cause: 'restart' | 'store-outage' = 'restart'): Decision {
  const task = vm.running;
  // A migration passed to this host and not taken over yet is not interrupted: it goes on (§7.8).
  if (!task || task.host !== ctx.hostId || task.migration?.handedOver) return { events: [], reply };
  // No service restarted when the store went away: the task says what did happen.
  const error = cause === 'store-outage' ? Errors.interruptedByStoreOutage() : Errors.interruptedByRestart();
  const failed: EventBody = { type: 'TaskFailed', taskId: task.taskId, error: error.value, cancelPointsSeen: 0, duration: 0 };
  const reason = cause === 'store-outage' ? 'interrupted: the event log could not be written' : 'interrupted by service restart';
  return { events: [...ending(vm, task, failed), stateCheck(vm, reason, ctx)], reply };
}
