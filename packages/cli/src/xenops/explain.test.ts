import { describe, expect, it } from 'vitest';
import { ExitCode } from './errors.js';
import { explain } from './explain.js';

describe('explain: interrupted tasks', () => {
  it('a task cut off by a service restart, and one cut off because the store was unreachable, are told apart', () => {
    const restart = explain(['Internal_error', 'Interrupted by service restart'], { op: 'start', vm: 'web', fromTask: true });
    expect(restart.message).toBe('the operation was interrupted by a service restart; run it again');
    expect(restart.code).toBe(ExitCode.TASK_FAILED);
    const outage = explain(['Internal_error', 'Interrupted: the event log could not be written (the store was unreachable)'], { op: 'start', vm: 'web', fromTask: true });
    expect(outage.message).toBe('the operation was interrupted because the store was unreachable; run it again');
    expect(outage.code).toBe(ExitCode.TASK_FAILED);
  });
});
