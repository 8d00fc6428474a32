import type { ErrorValue } from '../errors.js';
import type { LogEvent } from '../events/event.js';
import type { Operation } from './operation.js';
import { withFields } from './with-fields.js';

export type TaskStatus = 'pending' | 'completed' | 'failed';

/** A task as the log knows it (API.md §4.9, §7.1). Its id is the seq of its creation. */
export interface TaskRecord {
  readonly id: string;
  readonly vmId: string;
  readonly dbg: string;
  readonly ctimeMs: number;
  /** Host whose agent runs the task. */
  readonly host: string;
  readonly operation: Operation;
  readonly status: TaskStatus;
  readonly progress: number;
  readonly startedMs?: number;
  readonly duration?: number;
  /** Result as xenopsd-encoded JSON text ('' for none). */
  readonly resultJson?: string;
  readonly error?: ErrorValue;
  readonly cancelPointsSeen: number;
  readonly cancellable: boolean;
  /** Seq of the event that ended the task. */
  readonly endedSeq?: number;
}

/**
 * The task an event is about, if any. A TaskCreated event's task id is its own seq; a task event
 * with an empty task id is about the task created by the same write (its seq too): that lets one
 * write create a task and end it (a task refused before it could be queued).
 */
export function taskIdOf(event: LogEvent): string | undefined {
  const { body } = event;
  if (body.type === 'TaskCreated') return String(event.seq);
  if (!('taskId' in body)) return undefined;
  return body.taskId === '' ? String(event.seq) : body.taskId;
}

/**
 * Folds one event into one task record. Pure: returns a new record, `undefined` once the task is
 * destroyed, and the input unchanged for events about other things. Events about a task that is
 * already destroyed change nothing (its outcome stays readable in the log only).
 */
export function evolveTask(task: TaskRecord | undefined, event: LogEvent): TaskRecord | undefined {
  const { body, seq, audit } = event;
  if (body.type === 'TaskCreated') {
    return {
      id: String(seq),
      vmId: body.vmId,
      dbg: audit.dbg,
      ctimeMs: body.ctimeMs,
      host: body.host,
      operation: body.operation,
      status: 'pending',
      progress: 0,
      cancelPointsSeen: 0,
      cancellable: true,
    };
  }
  if (!task) return undefined;
  switch (body.type) {
    case 'TaskStarted':
      return withFields(task, { startedMs: body.startedMs });
    case 'TaskProgressed':
      return withFields(task, { progress: body.progress, cancelPointsSeen: body.cancelPointsSeen, cancellable: body.cancellable });
    case 'TaskCompleted':
      return withFields(task, {
        status: 'completed',
        progress: 1,
        duration: body.duration,
        resultJson: body.resultJson,
        cancelPointsSeen: body.cancelPointsSeen,
        endedSeq: seq,
      });
    case 'TaskFailed':
      return withFields(task, { status: 'failed', error: body.error, duration: body.duration, cancelPointsSeen: body.cancelPointsSeen, endedSeq: seq });
    case 'TaskDestroyed':
      return undefined;
    default:
      return task;
  }
}
