/**
 * The bound on one VM's queue (API.md §7.2): how many tasks may wait behind the running one
 * before another caller's operation is refused. Work the engine queues by itself (state checks,
 * guest actions) is never refused: it keeps the VM consistent with its domain.
 */
import { Errors, type ErrorValue, type XenopsError } from '../errors.js';

/**
 * xapi queues a handful of operations per VM; a thousand is far beyond any legitimate use and
 * still keeps one runaway client from growing the log and the read model without end.
 */
export const DEFAULT_MAX_QUEUED_TASKS = 1000;

/** The stable start of the refusal's `Internal_error` message. */
export const QUEUE_FULL_PREFIX = 'too many queued tasks for VM ';

export function queueFull(vmId: string, limit: number): XenopsError {
  return Errors.internal(`${QUEUE_FULL_PREFIX}${vmId} (limit ${limit})`);
}

export function isQueueFull(error: ErrorValue): boolean {
  return Array.isArray(error) && error[0] === 'Internal_error' && typeof error[1] === 'string' && error[1].startsWith(QUEUE_FULL_PREFIX);
}
