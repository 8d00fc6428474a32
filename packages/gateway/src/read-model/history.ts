import { Errors, type TaskRecord, type VmAggregate } from '@xenops/core';
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
  return gateway.projection.stateAt(asOf);
}
