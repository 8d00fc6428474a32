import {
  Errors,
  toErrorValue,
  wireToJson,
  XenopsError,
  type Audit,
  type EventBody,
  type PendingEvent,
  type QueuedTask,
  type VmAggregate,
  type WireOut,
} from '@xenops/core';
import type { Backend } from '../backend/backend.js';
import { atomMayWait, atomWeight, describeAtom } from './atom.js';
import { AtomDeadline, AtomTimeoutError } from './atom-deadline.js';
import { TaskJournal } from './task-journal.js';
import { isGuestShutdownFailure, planOperation } from './plan.js';

/** The VM actor as seen by a running task: its current state and its serialized log writer. */
export interface TaskHost {
  readonly hostId: string;
  readonly vm: VmAggregate;
  append(events: readonly PendingEvent[]): Promise<number>;
}

export interface RunTaskOptions {
  readonly host: TaskHost;
  readonly backend: Backend;
  /** Aborted by Task.cancel. */
  readonly signal: AbortSignal;
  readonly now?: () => number;
  /** Each atom's time limit (API.md §7.2: 1200 s); tests shorten it. */
  readonly atomTimeoutMs?: number;
}

/**
 * Executes one task: records its start, expands the operation into atoms, performs them one by
 * one with a cancellation point before each, records progress after each, and ends the task.
 * Never throws for operation failures: they end the task `Failed`. Throws only when the log
 * cannot be written (the agent then reloads the actor).
 */
export async function runTask(task: QueuedTask, opts: RunTaskOptions): Promise<void> {
  const { host, backend, signal } = opts;
  const now = opts.now ?? Date.now;
  const audit = (): Audit => ({ dbg: task.dbg, timeMs: now(), host: host.hostId, actor: `task/${task.taskId}` });
  const ev = (body: EventBody): PendingEvent => ({ audit: audit(), body });
  const startedMs = now();
  const elapsed = () => (now() - startedMs) / 1000;
  let cancelPointsSeen = 0;
  let cancellable = true;
  const journal = new TaskJournal(host, backend.journalsEachAtom);
  // Task.destroy_on_finish may arrive while the task runs: read it when the task ends.
  const destroyOnFinish = () => {
    const vm = host.vm;
    return (vm.running?.taskId === task.taskId ? vm.running : vm.queue.find((t) => t.taskId === task.taskId))?.destroyOnFinish;
  };
  const ending = (body: EventBody): PendingEvent[] =>
    task.operation.autoDestroy || destroyOnFinish()
      ? [ev(body), ev({ type: 'TaskDestroyed', taskId: task.taskId })]
      : [ev(body)];

  const plan = planOperation(task.operation, host.vm);
  if (!plan.ok) {
    await host.append([
      ev({ type: 'TaskStarted', taskId: task.taskId, startedMs }),
      ...ending({ type: 'TaskFailed', taskId: task.taskId, error: plan.error.value, cancelPointsSeen, duration: 0 }),
    ]);
    return;
  }
  await journal.record([ev({ type: 'TaskStarted', taskId: task.taskId, startedMs })]);

  const deadline = new AtomDeadline(opts.atomTimeoutMs);
  // Until the point of no return an atom's waits end on Task.cancel or at its limit; after, only at its limit.
  const cancelOrDeadline = AbortSignal.any([signal, deadline.signal]);
  const cancelPoint = () => {
    cancelPointsSeen++;
    const triggered = task.operation.cancelAtPoint === cancelPointsSeen;
    if (cancellable && (signal.aborted || triggered)) throw Errors.cancelled(task.taskId);
  };
  // The point of no return is recorded at once, so Task.stat shows it while the atom still runs.
  const markNonCancellable = () => {
    if (!cancellable) return;
    cancellable = false;
    void journal.record([ev({ type: 'TaskProgressed', taskId: task.taskId, progress: progressNow(), cancelPointsSeen, cancellable: false, atom: 'point of no return' })]);
    journal.flush().catch(() => {
        /* the end of the task records cancellable: false anyway */
      });
  };
  let resultJson = '';
  const totalWeight = plan.atoms.reduce((sum, a) => sum + atomWeight(a), 0);
  let doneWeight = 0;
  const progressNow = () => (totalWeight === 0 ? 0 : doneWeight / totalWeight);
  try {
    for (let i = 0; i < plan.atoms.length; i++) {
      const atom = plan.atoms[i]!;
      cancelPoint();
      if (atomMayWait(atom)) await journal.flush();
      let facts: EventBody[];
      try {
        const ctx = { vm: journal.vm, signal: cancellable ? cancelOrDeadline : deadline.signal, cancelPoint, markNonCancellable };
        const outcome = await deadline.run(() => backend.perform(atom, ctx));
        facts = outcome.events;
        if (outcome.result !== undefined) resultJson = wireToJson(outcome.result as WireOut);
      } catch (e) {
        const error = asXenopsError(e, task.taskId, signal);
        if (!(atom.kind === 'VM_shutdown_domain' && fallsBackToHard(task) && isGuestShutdownFailure(error))) throw error;
        facts = [];
      }
      doneWeight += atomWeight(atom);
      const progress = totalWeight === 0 ? 1 : doneWeight / totalWeight;
      const last = i === plan.atoms.length - 1;
      const tail: PendingEvent[] = last
        ? ending({ type: 'TaskCompleted', taskId: task.taskId, duration: elapsed(), resultJson, cancelPointsSeen })
        : [ev({ type: 'TaskProgressed', taskId: task.taskId, progress, cancelPointsSeen, cancellable, atom: describeAtom(atom) })];
      await journal.record([...facts.map(ev), ...tail]);
    }
    if (plan.atoms.length === 0) {
      await journal.record(ending({ type: 'TaskCompleted', taskId: task.taskId, duration: elapsed(), resultJson: '', cancelPointsSeen }));
    }
    await journal.flush();
  } catch (e) {
    if (e instanceof LogWriteError) throw e.cause;
    const error = asXenopsError(e, task.taskId, signal);
    const undo: PendingEvent[] = [];
    if (plan.compensate?.length) {
      // The undo atoms have limits of their own: the task's may be what just expired.
      const undoDeadline = new AtomDeadline(opts.atomTimeoutMs);
      try {
        for (const atom of plan.compensate) {
          try {
            const ctx = { vm: journal.vm, signal: undoDeadline.signal, cancelPoint: () => {}, markNonCancellable };
            const outcome = await undoDeadline.run(() => backend.perform(atom, ctx));
            undo.push(...outcome.events.map(ev));
          } catch {
            // best effort: the task fails with its own error either way
          }
        }
      } finally {
        undoDeadline.dispose();
      }
    }
    const events = [...undo, ...ending({ type: 'TaskFailed', taskId: task.taskId, error: error.value, cancelPointsSeen, duration: elapsed() })];
    if (plan.onFailure === 'check') {
      events.push({
        audit: { ...audit(), dbg: 'internal:check_state', actor: `vm/${host.vm.id}` },
        body: {
          type: 'TaskCreated',
          vmId: host.vm.id,
          operation: { kind: 'VM.check_state', reason: `${task.operation.kind} failed`, autoDestroy: true },
          host: host.hostId,
          ctimeMs: now(),
        },
      });
    }
    await journal.record(events);
    await journal.flush();
  } finally {
    deadline.dispose();
  }
}

/** The seed dialect's clean shutdown and reboot fall back to a hard power-off (§7.4). */
function fallsBackToHard(task: QueuedTask): boolean {
  const op = task.operation;
  return (op.kind === 'VM.shutdown' || op.kind === 'VM.reboot') && op.fallbackToHard;
}

/** Marks a failure to write the log, so it is not mistaken for an operation failure. */
export class LogWriteError extends Error {
  override readonly name = 'LogWriteError';
}

function asXenopsError(e: unknown, taskId: string, signal: AbortSignal): XenopsError {
  if (e instanceof XenopsError) return e;
  if (e instanceof AtomTimeoutError) return Errors.timedOutWaitingOnTask(taskId);
  if (signal.aborted && e instanceof Error && e.name === 'AbortError') return Errors.cancelled(taskId);
  return new XenopsError(toErrorValue(e));
}
