/**
 * Waiting for a task (API.md §4.9, §7.1): `Task.stat` polled with a growing pause (20 ms up to
 * 250 ms), the progress of a pending task handed to `onProgress`. A failed task is a
 * `XenopsTaskFailedError` with the task's error variant.
 */
import { XenopsError, type ErrorValue, type TaskView } from '@xenops/core';
import type { XenopsClient } from './client.js';

export interface TaskWaitOptions {
  /** Called with the progress (0..1) of the pending task at each poll. */
  readonly onProgress?: (progress: number) => void;
  /** Destroy the task record once it has ended (`Task.destroy`; a failure to is ignored). */
  readonly destroy?: boolean;
  /** Stops waiting (the task goes on). */
  readonly signal?: AbortSignal;
  /** The longest pause between two polls (default 250 ms). */
  readonly maxPollMs?: number;
}

export interface TaskOutcome {
  readonly task: TaskView;
  /** Seconds the task ran, as the service reports it. */
  readonly duration: number;
  /** The task's result in its wire form (e.g. a VM id, or run_script's `{rc, stdout, stderr}`). */
  readonly result?: unknown;
}

/** The task ended Failed; `value` is its error (§6). */
export class XenopsTaskFailedError extends XenopsError {
  constructor(
    readonly taskId: string,
    error: ErrorValue,
  ) {
    super(error);
  }
}

export async function waitForTask(client: XenopsClient, taskId: string, options: TaskWaitOptions = {}): Promise<TaskOutcome> {
  let pause = 20;
  const maxPause = options.maxPollMs ?? 250;
  for (;;) {
    options.signal?.throwIfAborted();
    const task = await client.call('Task.stat', { id: taskId });
    const state = task.state;
    if (state[0] === 'Pending') {
      options.onProgress?.(state[1]);
      await sleep(pause, options.signal);
      pause = Math.min(maxPause, pause * 2);
      continue;
    }
    if (options.destroy) await client.call('Task.destroy', { id: taskId }).catch(() => undefined);
    if (state[0] === 'Failed') throw new XenopsTaskFailedError(taskId, state[1]);
    const { duration, result } = state[1];
    return { task, duration, ...(result !== undefined ? { result } : {}) };
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}
