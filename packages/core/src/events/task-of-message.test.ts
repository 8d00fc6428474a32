import { describe, expect, it } from 'vitest';
import { assertBatchRoundTrips } from './checked-event-log.js';
import { decodeBatch, encodeBatch, type PendingEvent } from './codec.js';
import { TASK_OF_THIS_MESSAGE } from './task-of-message.js';

const audit = { dbg: 'task-of-message test', timeMs: 1_700_000_000_000, host: 'h1', actor: 'vm/a' };
const taskAudit = { ...audit, actor: `task/${TASK_OF_THIS_MESSAGE}` };

describe('the task of this message', () => {
  const batch: PendingEvent[] = [
    { audit, body: { type: 'TaskCreated', vmId: 'a', operation: { kind: 'VM.pause' }, host: 'h1', ctimeMs: 1 } },
    { audit: taskAudit, body: { type: 'TaskStarted', taskId: TASK_OF_THIS_MESSAGE, startedMs: 2 } },
    { audit: taskAudit, body: { type: 'TaskCompleted', taskId: TASK_OF_THIS_MESSAGE, duration: 0, resultJson: '', cancelPointsSeen: 1 } },
    // Another task named by its own id stays as it is.
    { audit: { ...audit, actor: 'task/17' }, body: { type: 'TaskDestroyed', taskId: '17' } },
  ];

  it('is read as the seq the message is stored at, in bodies and in the audit actor', () => {
    const events = decodeBatch(42, encodeBatch(batch));
    expect(events.map((e) => ('taskId' in e.body ? e.body.taskId : undefined))).toEqual([undefined, '42', '42', '17']);
    expect(events.map((e) => e.audit.actor)).toEqual(['vm/a', 'task/42', 'task/42', 'task/17']);
  });

  it('is written as the placeholder: the log’s round trip accepts it', () => {
    expect(() => assertBatchRoundTrips('vm/a', encodeBatch(batch))).not.toThrow();
  });
});
