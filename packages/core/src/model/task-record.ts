import { produce } from 'immer';
import type { ErrorValue } from '../errors.js';
import type { LogEvent } from '../events/event.js';
import type { Operation } from './operation.js';

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
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.startedMs = body.startedMs;
      });
    case 'TaskProgressed':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.progress = body.progress;
        t.cancelPointsSeen = body.cancelPointsSeen;
        t.cancellable = body.cancellable;
      });
    case 'TaskCompleted':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.status = 'completed';
        t.progress = 1;
        t.duration = body.duration;
        t.resultJson = body.resultJson;
        t.cancelPointsSeen = body.cancelPointsSeen;
        t.endedSeq = seq;
      });
    case 'TaskFailed':
      return produce(task, (t: Mutable<TaskRecord>) => {
        t.status = 'failed';
        t.error = body.error;
        t.duration = body.duration;
        t.cancelPointsSeen = body.cancelPointsSeen;
        t.endedSeq = seq;
      });
    case 'TaskDestroyed':
      return undefined;
    default:
      return task;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
