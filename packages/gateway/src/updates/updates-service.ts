/**
 * UPDATES (API.md §7.7) for one gateway: the update set maintained from the projection's fold,
 * the blocked `UPDATES.get` callers, and the barrier / refresh writes.
 */
import {
  dynamicIdsOf,
  encodeBatch,
  Errors,
  Streams,
  type EventBody,
  type EventLog,
  type UpdatesResult,
} from '@xenops/core';
import { DEFAULT_LIMITS, type LimitUsage } from '../limits/limits.js';
import type { FoldStep, Projection } from '../read-model/projection.js';
import { UpdateSet, type UpdateSetChange } from './update-set.js';

/** Stream of `VmRefreshed` events: not `vm/<id>`, whose last seq guards the VM actor's writes. */
export const REFRESH_STREAM = 'updates/refresh';

/** setTimeout's limit (~24.8 days); a longer timeout is treated as no limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  readonly lastId: number;
  readonly resolve: (r: UpdatesResult) => void;
  readonly reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

export interface WriterIdentity {
  readonly hostId: string;
}

/** The stable start of the refusal's `Internal_error` message when too many calls are blocked. */
export const TOO_MANY_WAITERS_PREFIX = 'too many blocked UPDATES.get calls';

const registry = new WeakMap<Projection, UpdatesService>();

/** The UPDATES service attached to a gateway's projection. */
export function updatesOf(projection: Projection): UpdatesService {
  const s = registry.get(projection);
  if (!s) throw Errors.internal('UPDATES is not available in this gateway');
  return s;
}

export class UpdatesService {
  readonly set = new UpdateSet();
  private readonly waiters = new Set<Waiter>();
  private readonly maxWaiters: number;
  private refusals = 0;
  private closed = false;

  /** Attach before `projection.start()` so the set covers the whole log. */
  constructor(
    private readonly projection: Projection,
    private readonly log: EventLog,
    private readonly writer: WriterIdentity,
    opts: { readonly maxWaiters?: number } = {},
  ) {
    this.maxWaiters = opts.maxWaiters ?? DEFAULT_LIMITS.maxUpdatesWaiters;
    projection.addObserver((seq, steps) => this.onMessage(seq, steps), {
      name: 'updates',
      exportState: () => this.set.exportState(),
      importState: (state) => this.set.importState(state),
      mergeState: (state) => this.set.mergeState(state),
    });
    registry.set(projection, this);
  }

  /** Blocked `UPDATES.get` calls (the `xenops_updates_waiters` gauge). */
  get waiterCount(): number {
    return this.waiters.size;
  }

  get waiterUsage(): LimitUsage {
    return { resource: 'updates_waiters', limit: this.maxWaiters, inUse: this.waiters.size, refusals: this.refusals };
  }

  private onMessage(seq: number, steps: readonly FoldStep[]): void {
    let grew = false;
    for (const step of steps) {
      const change = changeOf(step);
      if (!change) continue;
      if (change.signals?.length || change.barrierInjected) grew = true;
      this.set.apply(seq, change);
    }
    if (grew && this.waiters.size) this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (this.set.hasNewerThan(w.lastId)) this.finish(w, this.set.get(w.lastId));
    }
  }

  private finish(w: Waiter, result: UpdatesResult): void {
    if (!this.waiters.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    w.resolve(result);
  }

  /**
   * Fails every blocked call with `error`: the store went away, and what they wait for may not
   * come for long (a caller that asked for no timeout would otherwise wait as long). Calls made
   * meanwhile fail at once (the store refuses the catch-up).
   */
  failWaiters(error: Error): void {
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      if (w.timer) clearTimeout(w.timer);
      w.reject(error);
    }
  }

  /** `UPDATES.get(last_id, timeout)`: timeout in seconds, absent = no limit, <= 0 = at once. */
  async get(lastId: number | undefined, timeoutSeconds: number | undefined, signal?: AbortSignal): Promise<UpdatesResult> {
    const from = lastId ?? 0;
    // A token may come from another gateway: catch up with the log before answering.
    await this.catchUp();
    if (this.set.hasNewerThan(from)) return this.set.get(from);
    if (this.closed || (timeoutSeconds !== undefined && timeoutSeconds <= 0)) return [[], [], from];
    // Only a call that would block counts: one with something to return is always answered.
    if (this.waiters.size >= this.maxWaiters) {
      this.refusals++;
      throw Errors.internal(`${TOO_MANY_WAITERS_PREFIX} (limit ${this.maxWaiters})`);
    }
    return new Promise<UpdatesResult>((resolve, reject) => {
      const w: Waiter = { lastId: from, resolve, reject };
      this.waiters.add(w);
      if (timeoutSeconds !== undefined && timeoutSeconds * 1000 <= MAX_TIMER_MS) {
        w.timer = setTimeout(() => this.finish(w, [[], [], from]), Math.ceil(timeoutSeconds * 1000));
      }
      // A caller that went away no longer waits (nor counts as a waiter).
      if (signal?.aborted) this.finish(w, [[], [], from]);
      else signal?.addEventListener('abort', () => this.finish(w, [[], [], from]), { once: true });
    });
  }

  /** `UPDATES.last_id`: the head seq, once this gateway's read model has reached it. */
  async lastId(): Promise<number> {
    return this.catchUp();
  }

  async injectBarrier(dbg: string, vmId: string, barrierId: number): Promise<void> {
    await this.catchUp();
    const entries = this.set.entriesOfVm(vmId).map((e) => ({ id: e.id, seq: e.seq }));
    await this.write(dbg, Streams.barriers(), { type: 'BarrierInjected', barrierId, vmId, entries });
  }

  async removeBarrier(dbg: string, barrierId: number): Promise<void> {
    await this.write(dbg, Streams.barriers(), { type: 'BarrierRemoved', barrierId });
  }

  async refreshVm(dbg: string, vmId: string): Promise<void> {
    if (!this.projection.vms.get(vmId)?.config) throw Errors.vmDoesNotExist(vmId);
    await this.write(dbg, REFRESH_STREAM, { type: 'VmRefreshed', vmId });
  }

  /** Releases every blocked caller (with an empty answer); later calls no longer block. */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) this.finish(w, [[], [], w.lastId]);
  }

  private async catchUp(): Promise<number> {
    const head = await this.log.head();
    await this.projection.waitFor(head);
    return head;
  }

  private async write(dbg: string, stream: string, body: EventBody): Promise<void> {
    const audit = { dbg, timeMs: Date.now(), host: this.writer.hostId, actor: 'gateway' };
    const seq = await this.log.append({ stream, data: encodeBatch([{ audit, body }]) });
    await this.projection.waitFor(seq);
  }
}

/** What one folded event does to the update set. */
export function changeOf(step: FoldStep): UpdateSetChange | undefined {
  const { body } = step.event;
  if (body.type === 'BarrierInjected') {
    return { barrierInjected: { barrierId: body.barrierId, entries: body.entries.map((e) => ({ id: e.id, seq: e.seq })) } };
  }
  if (body.type === 'BarrierRemoved') return { barrierRemoved: body.barrierId };
  const effects = dynamicIdsOf(step.event, step);
  if (!effects.signals.length && !effects.removes.length) return undefined;
  return effects;
}
