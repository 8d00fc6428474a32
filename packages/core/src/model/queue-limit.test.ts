import { describe, expect, it } from 'vitest';
import type { EventBody, LogEvent } from '../events/event.js';
import { XenopsError } from '../errors.js';
import { decide } from '../engine/decide.js';
import { isQueueFull } from './queue-limit.js';
import { emptyVm, evolveVm, type VmAggregate } from './vm-aggregate.js';

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'a' };
const at = (seq: number, body: EventBody): LogEvent => ({ seq, audit, body }) as LogEvent;

/** A registered VM with `n` tasks waiting on its queue. */
function vmWithQueue(n: number): VmAggregate {
  let vm = { ...emptyVm('v'), config: { id: 'v' } } as VmAggregate;
  for (let i = 1; i <= n; i++) {
    vm = evolveVm(vm, at(i, { type: 'TaskCreated', vmId: 'v', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 } as EventBody));
  }
  return vm;
}

const submit = { type: 'SubmitOperation', vmId: 'v', operation: { kind: 'VM.unpause' } } as const;

describe('the queued-task limit in decide', () => {
  it('accepts up to the limit, then refuses with a message naming the VM and the limit', () => {
    const ctx = { hostId: 'h', nowMs: 0, maxQueuedTasks: 3 };
    expect(decide(vmWithQueue(2), submit, ctx)).not.toBeInstanceOf(XenopsError);
    const refused = decide(vmWithQueue(3), submit, ctx);
    expect(refused).toBeInstanceOf(XenopsError);
    expect((refused as XenopsError).value).toEqual(['Internal_error', 'too many queued tasks for VM v (limit 3)']);
    expect(isQueueFull((refused as XenopsError).value)).toBe(true);
    expect(isQueueFull(['Internal_error', 'invalid id'])).toBe(false);
  });

  it('without a limit nothing is refused', () => {
    expect(decide(vmWithQueue(50), submit, { hostId: 'h', nowMs: 0 })).not.toBeInstanceOf(XenopsError);
  });

  it('an unknown VM is still Does_not_exist, whatever the limit', () => {
    const refused = decide(emptyVm('x'), { ...submit, vmId: 'x' }, { hostId: 'h', nowMs: 0, maxQueuedTasks: 0 });
    expect((refused as XenopsError).value).toEqual(['Does_not_exist', ['VM', 'x/config']]);
  });
});
