/**
 * Running an operation that returns a task (API.md §4.9, §7.1): print the id at once with
 * `--no-wait`, else follow `Task.stat` with a progress bar, destroy the finished task, and report
 * the outcome. Ctrl-C once cancels the task (Task.cancel), twice leaves at once.
 */
import { CliError, ExitCode } from './errors.js';
import type { Context } from './context.js';
import { explain, type ErrorContext } from './explain.js';
import { Progress } from './format/progress.js';
import { XenopsTaskFailedError } from '@xenops/client';
import { cliFailure, RpcFailure } from './client/rpc.js';

/** A Task.t in its wire form (`xenops tasks` prints it as it comes). */
export interface TaskRecord {
  id: string;
  dbg: string;
  ctime: number;
  state: ['Pending', number] | ['Completed', { duration: number; result?: unknown }] | ['Failed', unknown];
  cancellable?: boolean;
}

export interface TaskOutcome {
  task: string;
  /** Seconds, measured by the CLI from the call to the end. */
  elapsed: number;
  /** Seconds the task ran, as the server reports it. */
  duration: number;
  result?: unknown;
}

/** Calls `method`; returns the task id. Call errors are explained with `errCtx`. */
export async function startTask(ctx: Context, method: string, args: Record<string, unknown>, errCtx: ErrorContext): Promise<string> {
  try {
    return String(await ctx.rpc().call(method, args));
  } catch (e) {
    if (e instanceof RpcFailure) throw explain(e.error, errCtx);
    throw e;
  }
}

/** Follows a task to its end (the client's waitForTask) with a progress bar labelled `label`. */
export async function waitTask(ctx: Context, taskId: string, label: string, errCtx: ErrorContext, started = Date.now()): Promise<TaskOutcome> {
  const rpc = ctx.rpc();
  const progress = new Progress(ctx.io.stderr, `${label} (task ${taskId})`, !ctx.json || ctx.io.stderr.isTTY === true);
  let cancelRequested = false;
  let sigints = 0;
  ctx.interrupt = () => {
    sigints++;
    if (sigints > 1) {
      progress.finish(false);
      ctx.note(`left task ${taskId} running; 'xenops task-cancel ${taskId}' cancels it`);
      process.exit(ExitCode.INTERRUPTED);
    }
    cancelRequested = true;
    progress.finish(false);
    ctx.note(`cancelling task ${taskId} (Ctrl-C again to leave it running)`);
    rpc.call('Task.cancel', { id: taskId }).catch(() => undefined);
  };
  progress.update(0);
  try {
    const outcome = await rpc.client.waitForTask(taskId, {
      destroy: true,
      onProgress: (p) => {
        if (!cancelRequested) progress.update(p);
      },
    });
    progress.finish(true);
    return { task: taskId, elapsed: (Date.now() - started) / 1000, duration: outcome.duration, ...(outcome.result !== undefined ? { result: outcome.result } : {}) };
  } catch (e) {
    if (e instanceof XenopsTaskFailedError) {
      progress.finish(false);
      throw explain(e.value, { ...errCtx, fromTask: true });
    }
    const failure = cliFailure(e);
    if (failure instanceof RpcFailure) throw explain(failure.error, { ...errCtx, op: 'task' });
    throw failure;
  } finally {
    ctx.interrupt = undefined;
  }
}

export interface OperationSpec {
  method: string;
  args: Record<string, unknown>;
  /** Progress bar label, e.g. `start web01`. */
  label: string;
  errCtx: ErrorContext;
  /** Wait even under `--no-wait` (a step that later steps depend on). */
  forceWait?: boolean;
}

/**
 * Starts the operation and, unless `--no-wait`, waits for it. With `--no-wait` prints the task
 * id (JSON: `{"task": "14"}`) and returns undefined.
 */
export async function runOperation(ctx: Context, op: OperationSpec): Promise<TaskOutcome | undefined> {
  const started = Date.now();
  const id = await startTask(ctx, op.method, op.args, op.errCtx);
  if (ctx.noWait && !op.forceWait) {
    if (ctx.json) ctx.printJson({ task: id });
    else ctx.out(id);
    return undefined;
  }
  return waitTask(ctx, id, op.label, op.errCtx, started);
}

/** A synchronous call whose errors are explained with `errCtx`. */
export async function call<T = unknown>(ctx: Context, method: string, args: Record<string, unknown>, errCtx: ErrorContext): Promise<T> {
  try {
    return await ctx.rpc().call<T>(method, args);
  } catch (e) {
    if (e instanceof RpcFailure) throw explain(e.error, errCtx);
    throw e;
  }
}

export function assertNever(x: never): never {
  throw new CliError(`unexpected ${String(x)}`, ExitCode.GENERIC);
}
