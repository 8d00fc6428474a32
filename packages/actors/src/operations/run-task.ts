import { setTimeout as sleep } from 'node:timers/promises';
import {
  atomMayWait,
  atomWeight,
  describeAtom,
  Errors,
  prepareAtom,
  toErrorValue,
  XenopsError,
  type Atom,
  type Decision,
  type EngineInput,
  type PendingEvent,
  type PerformedAtom,
  type QueuedTask,
  type VmAggregate,
} from '@xenops/core';
import type { Backend, EffectContext } from '../backend/backend.js';
import { AtomDeadline, AtomTimeoutError } from './atom-deadline.js';
import { TaskJournal } from './task-journal.js';

/** The VM actor as seen by a running task: its state, its decider and its serialized log writer. */
export interface TaskHost {
  readonly hostId: string;
  /** The VM as the log knows it. */
  readonly vm: VmAggregate;
  /** Set once a write of the VM's stream failed: the actor is reloaded from the log. */
  readonly stalled: boolean;
  /** The VM's decider against `vm`, with the audit of a step of the task whose dbg is `dbg`. */
  decide(vm: VmAggregate, input: EngineInput, dbg: string): { readonly decision: Decision; readonly events: PendingEvent[] } | XenopsError;
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
  readonly logger?: (line: string) => void;
  /**
   * `start`: the task at the head of the queue starts (the default). `receive`: this host is a
   * migration's destination and takes over the task the switch-over passed to it (§7.8).
   */
  readonly begin?: 'start' | 'receive';
  /**
   * The events that queued the task, not written yet: the task runs in the call that queued it and
   * its first write carries them (its id is `TASK_OF_THIS_MESSAGE` until then).
   */
  readonly createdWith?: readonly PendingEvent[];
}

/**
 * Executes one task: asks the VM's decider to start it (which expands its operation into atoms),
 * then for each atom makes a cancellation point, prepares it (the engine's rules), has the backend
 * perform its effect, and asks the decider to record what was observed; a failure asks it to
 * fail the task. Every event comes from the decider; this function only drives. Never throws for
 * operation failures: they end the task `Failed`. Throws only when the log cannot be written
 * (the agent then reloads the actor).
 */
export async function runTask(task: QueuedTask, opts: RunTaskOptions): Promise<void> {
  const { host, backend, signal } = opts;
  const now = opts.now ?? Date.now;
  const { taskId } = task;
  const startedMs = now();
  const elapsed = () => (now() - startedMs) / 1000;
  let cancelPointsSeen = 0;
  // A migration's destination is past its point of no return: nothing cancels it any more (§7.1).
  let cancellable = opts.begin !== 'receive';
  const journal = new TaskJournal(host, task.dbg, backend.capabilities.journalsEachAtom, opts.createdWith);
  const decided = (d: Decision | XenopsError): Decision => {
    if (d instanceof XenopsError) throw d;
    return d;
  };

  const begin: EngineInput = opts.begin === 'receive' ? { type: 'ReceiveMigration', taskId } : { type: 'StartTask', taskId, startedMs };
  const start = decided(await journal.decide(begin));
  const plan = start.plan;
  // A migration's destination runs its atoms before writing them: its guest is stopped meanwhile.
  if (opts.begin === 'receive') journal.gather();
  if (!plan) {
    // Refused by its precondition, or nothing to do: it has already ended.
    await journal.flush();
    return;
  }

  const deadline = new AtomDeadline(opts.atomTimeoutMs);
  // Until the point of no return an atom's waits end on Task.cancel or at its limit; after, only at its limit.
  const cancelled = new AbortController();
  const onCancel = () => {
    if (cancellable) cancelled.abort(signal.reason);
  };
  signal.addEventListener('abort', onCancel, { once: true });
  if (signal.aborted) onCancel();
  const atomSignal = AbortSignal.any([cancelled.signal, deadline.signal]);
  const cancelPoint = () => {
    cancelPointsSeen++;
    const triggered = task.operation.cancelAtPoint === cancelPointsSeen;
    if (cancellable && (signal.aborted || triggered)) throw Errors.cancelled(taskId);
  };
  const totalWeight = plan.atoms.reduce((sum, a) => sum + atomWeight(a), 0);
  let doneWeight = 0;
  // A migration's destination goes on from where the source handed over.
  const from = plan.progressFrom ?? 0;
  const progressOf = (weight: number) => from + (1 - from) * (totalWeight === 0 ? 1 : weight / totalWeight);
  const progressNow = () => progressOf(doneWeight);
  // The point of no return is recorded at once, so Task.stat shows it while the atom still runs.
  const markNonCancellable = () => {
    if (!cancellable) return;
    cancellable = false;
    void (async () => {
      await journal.decide({ type: 'PointOfNoReturn', taskId, progress: progressNow(), cancelPointsSeen });
      await journal.flush();
    })().catch((e: unknown) => {
      // A failed write stalls the actor (it is reloaded from the log, and this task then ends as
      // interrupted); a batch the log refused is lost, and the task's end records the rest.
      opts.logger?.(`task ${taskId}: cannot record its point of no return: ${(e as Error).message}`);
    });
  };
  // Progress inside a long atom (a migration's transfer), written as it goes.
  let atomNow: Atom | undefined;
  const progress = (fraction: number) => {
    if (!atomNow) return;
    const atom = describeAtom(atomNow);
    const now = progressOf(doneWeight + atomWeight(atomNow) * Math.min(1, Math.max(0, fraction)));
    void (async () => {
      await journal.decide({ type: 'AtomProgressed', taskId, progress: now, cancelPointsSeen, cancellable, atom });
      await journal.flush();
    })().catch((e: unknown) => opts.logger?.(`task ${taskId}: cannot record its progress: ${(e as Error).message}`));
  };
  const ctx: EffectContext = { signal: atomSignal, cancelPoint, markNonCancellable, progress };
  let resultJson = '';
  try {
    for (let i = 0; i < plan.atoms.length; i++) {
      const atom = plan.atoms[i]!;
      cancelPoint();
      if (atomMayWait(atom)) await journal.flush();
      atomNow = atom;
      const performed = await deadline.run(() => perform(atom, journal.vm, backend, ctx));
      // The state is at the destination and the source's guest stopped: its teardown and the
      // switch-over go in one write.
      if (atom.kind === 'VM_migrate_send') journal.gather();
      doneWeight += atomWeight(atom);
      const step = decided(
        await journal.decide({
          type: 'AtomPerformed',
          taskId,
          performed,
          progress: progressOf(doneWeight),
          cancelPointsSeen,
          cancellable,
          last: i === plan.atoms.length - 1,
          duration: elapsed(),
          resultJson,
        }),
      );
      resultJson = step.resultJson ?? resultJson;
    }
    await journal.flush();
  } catch (e) {
    if (e instanceof LogWriteError) throw e;
    const error = asXenopsError(e, taskId, signal);
    const undone: PerformedAtom[] = [];
    if (plan.compensate?.length) {
      // The undo atoms have limits of their own: the task's may be what just expired.
      const undoDeadline = new AtomDeadline(opts.atomTimeoutMs);
      const undoCtx: EffectContext = { signal: undoDeadline.signal, cancelPoint: () => {}, markNonCancellable };
      try {
        for (const atom of plan.compensate) {
          try {
            undone.push(await undoDeadline.run(() => perform(atom, journal.vm, backend, undoCtx)));
          } catch {
            // best effort: the task fails with its own error either way
          }
        }
      } finally {
        undoDeadline.dispose();
      }
    }
    decided(
      await journal.decide({
        type: 'TaskFailed',
        taskId,
        error: error.value,
        cancelPointsSeen,
        duration: elapsed(),
        undone,
        checkState: plan.onFailure === 'check',
      }),
    );
    await journal.flush();
  } finally {
    signal.removeEventListener('abort', onCancel);
    deadline.dispose();
  }
}

/**
 * Carries out one atom against the VM as the task sees it: the engine's rules say how (or refuse
 * it), the backend performs the effect, the engine waits for a delay.
 */
async function perform(atom: Atom, vm: VmAggregate, backend: Backend, ctx: EffectContext): Promise<PerformedAtom> {
  const step = prepareAtom(atom, vm);
  if (step instanceof XenopsError) throw step;
  switch (step.kind) {
    case 'effect':
      return { atom, step, observation: await backend.perform(step.effect, ctx) };
    case 'wait':
      // VM.delay (§7.1): the wait is a cancellation point of its own.
      ctx.cancelPoint();
      await sleep(step.seconds * 1000, undefined, { signal: ctx.signal });
      return { atom, step };
    case 'facts':
      return { atom, step };
  }
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
