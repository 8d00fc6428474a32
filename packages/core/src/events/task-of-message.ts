import type { Audit } from './audit.js';
import type { EventBody } from './event.js';

/**
 * The id a message's events give the task that same message creates. A task's id is the seq of
 * its creation (API.md §7.1), which the log assigns only when it stores the message; a task
 * created, run and ended in one message (a simulator task that cannot wait, run in the call that
 * queued it) names itself with this placeholder, and every fold reads it as the message's own seq.
 * No real task has it: seqs start at 1.
 */
export const TASK_OF_THIS_MESSAGE = '0';

const PLACEHOLDER_ACTOR = `task/${TASK_OF_THIS_MESSAGE}`;

/** An event of the message stored at `seq`, with the placeholder read as that seq (else unchanged). */
export function resolveTaskOfMessage<E extends { readonly audit: Audit; readonly body: EventBody }>(seq: number, event: E): E {
  const { audit, body } = event;
  const ownTask = 'taskId' in body && body.taskId === TASK_OF_THIS_MESSAGE;
  if (!ownTask && audit.actor !== PLACEHOLDER_ACTOR) return event;
  const id = String(seq);
  return {
    ...event,
    audit: audit.actor === PLACEHOLDER_ACTOR ? { ...audit, actor: `task/${id}` } : audit,
    body: ownTask ? { ...body, taskId: id } : body,
  };
}

/**
 * `resolveTaskOfMessage` for an event the decoder has just built (nobody else holds its objects):
 * set in place, not copied (a long fold decodes events by the million, most of them a task's).
 */
export function resolveTaskOfFreshEvent(seq: number, audit: { actor: string }, body: EventBody): void {
  if (audit.actor === PLACEHOLDER_ACTOR) audit.actor = `task/${seq}`;
  if ('taskId' in body && body.taskId === TASK_OF_THIS_MESSAGE) (body as { taskId: string }).taskId = String(seq);
}
