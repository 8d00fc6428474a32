import { decodeBatch, emptyVm, Errors, evolveTask, evolveVm, taskIdOf, type TaskRecord, type VmAggregate } from '@xenops/core';
import type { GatewayContext } from '../methods/method.js';

export interface ReadView {
  readonly vms: ReadonlyMap<string, VmAggregate>;
  readonly tasks: ReadonlyMap<string, TaskRecord>;
}

/**
 * The state to answer a read from: the live projection, or with `as_of` (API.md §9.6) the log
 * folded from scratch up to and including that seq.
 */
export async function readView(gateway: GatewayContext, asOf: number | undefined): Promise<ReadView> {
  if (asOf === undefined) return gateway.projection;
  const head = await gateway.log.head();
  if (asOf > head) throw Errors.internal(`as_of ${asOf} is beyond the log head ${head}`);
  const vms = new Map<string, VmAggregate>();
  const tasks = new Map<string, TaskRecord>();
  for await (const m of gateway.log.read(0, asOf)) {
    for (const event of decodeBatch(m.seq, m.data)) {
      if (m.stream.startsWith('vm/')) {
        const vmId = m.stream.slice(3);
        vms.set(vmId, evolveVm(vms.get(vmId) ?? emptyVm(vmId), event));
      }
      const taskId = taskIdOf(event);
      if (taskId !== undefined) {
        const next = evolveTask(tasks.get(taskId), event);
        if (next) tasks.set(taskId, next);
        else tasks.delete(taskId);
      }
    }
  }
  return { vms, tasks };
}
