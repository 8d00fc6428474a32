import {
  decodeBatch,
  emptyVm,
  evolveTask,
  evolveVm,
  taskIdOf,
  vmIdOf,
  type EventLog,
  type LogEvent,
  type Subscription,
  type TaskRecord,
  type VmAggregate,
} from '@xenops/core';

const VM_STREAM_PREFIX = 'vm/';
const MAX_UNCLAIMED_OUTCOMES = 10_000;

/** One event as the fold saw it: the states it changed, before and after. */
export interface FoldStep {
  readonly event: LogEvent;
  readonly stream: string;
  /**
   * Events of a `vm/<id>` stream: the VM aggregate before and after the event. Events of other
   * streams that name a VM: its current aggregate as both (when known).
   */
  readonly vmBefore?: VmAggregate;
  readonly vmAfter?: VmAggregate;
  /** The record of the task the event is about (`taskIdOf`), before and after. */
  readonly taskBefore?: TaskRecord;
  readonly taskAfter?: TaskRecord;
}

/**
 * Observes the fold: called once per message, after all its events are folded and before the
 * projection's seq advances (so `waitFor(seq)` resolves only after every observer has seen it).
 * Must not throw (a throw is swallowed) and must not block.
 */
export type ProjectionObserver = (seq: number, steps: readonly FoldStep[]) => void;

export interface TaskOutcome {
  readonly task: TaskRecord;
  readonly seq: number;
}

/**
 * The gateway's read model: the log folded with the same `evolve` functions the actors use, one
 * small immutable record per VM and per task inside plain Maps (a `produce` over one big map of
 * every VM would copy it per event).
 */
export class Projection {
  readonly vms = new Map<string, VmAggregate>();
  readonly tasks = new Map<string, TaskRecord>();
  private seqValue = 0;
  private subscription?: Subscription;
  private seqWaiters: Array<{ seq: number; resolve: () => void }> = [];
  private taskWaiters = new Map<string, Array<(outcome: TaskOutcome) => void>>();
  /**
   * Outcomes of self-destroying tasks (S/q calls), kept until their caller collects them: such a
   * task can end and vanish before the caller starts waiting. Bounded: oldest dropped first.
   */
  private readonly unclaimedOutcomes = new Map<string, TaskOutcome>();
  private failure?: Error;
  private readonly observers: ProjectionObserver[] = [];

  constructor(private readonly log: EventLog) {}

  /** Head seq folded so far. */
  get seq(): number {
    return this.seqValue;
  }

  get healthy(): boolean {
    return this.failure === undefined;
  }

  /** Adds an observer of the fold (add it before `start()` to see the whole log). */
  addObserver(observer: ProjectionObserver): void {
    this.observers.push(observer);
  }

  /** Folds the whole log, then follows it live. Resolves once caught up with the head at call time. */
  async start(): Promise<void> {
    const head = await this.log.head();
    this.subscription = this.log.tail(0, (m) => {
      const steps: FoldStep[] | undefined = this.observers.length ? [] : undefined;
      try {
        if (m.stream.startsWith(VM_STREAM_PREFIX)) {
          this.applyVmMessage(m.stream.slice(VM_STREAM_PREFIX.length), decodeBatch(m.seq, m.data), m.stream, steps);
        } else {
          for (const event of decodeBatch(m.seq, m.data)) {
            const step = this.applyTaskEvent(event);
            if (steps) {
              const vmId = vmIdOf(event.body);
              const vm = vmId === undefined ? undefined : this.vms.get(vmId);
              steps.push({ event, stream: m.stream, ...(vm ? { vmBefore: vm, vmAfter: vm } : {}), ...step });
            }
          }
        }
      } catch (e) {
        this.failure = e as Error;
      }
      if (steps) {
        for (const observe of this.observers) {
          try {
            observe(m.seq, steps);
          } catch {
            /* an observer's bug must not stop the fold */
          }
        }
      }
      this.advance(m.seq);
    });
    await this.waitFor(head);
  }

  async close(): Promise<void> {
    await this.subscription?.close();
  }

  /** Resolves once every message up to `seq` is folded (read-your-writes). */
  waitFor(seq: number): Promise<void> {
    if (seq <= this.seqValue) return Promise.resolve();
    return new Promise((resolve) => this.seqWaiters.push({ seq, resolve }));
  }

  /**
   * Resolves when the task ends (Completed or Failed), even if it is destroyed in the same write;
   * `undefined` after `timeoutMs`.
   */
  waitForTaskEnd(taskId: string, timeoutMs: number): Promise<TaskOutcome | undefined> {
    const unclaimed = this.unclaimedOutcomes.get(taskId);
    if (unclaimed) {
      this.unclaimedOutcomes.delete(taskId);
      return Promise.resolve(unclaimed);
    }
    const task = this.tasks.get(taskId);
    if (task && task.status !== 'pending') return Promise.resolve({ task, seq: task.endedSeq ?? this.seqValue });
    return new Promise((resolve) => {
      const waiter = (outcome: TaskOutcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      const timer = setTimeout(() => {
        const rest = this.taskWaiters.get(taskId)?.filter((w) => w !== waiter);
        if (rest?.length) this.taskWaiters.set(taskId, rest);
        else this.taskWaiters.delete(taskId);
        resolve(undefined);
      }, timeoutMs);
      const list = this.taskWaiters.get(taskId) ?? [];
      list.push(waiter);
      this.taskWaiters.set(taskId, list);
    });
  }

  private applyVmMessage(vmId: string, events: LogEvent[], stream: string, steps?: FoldStep[]): void {
    let vm = this.vms.get(vmId) ?? emptyVm(vmId);
    for (const event of events) {
      const before = vm;
      vm = evolveVm(vm, event);
      const step = this.applyTaskEvent(event);
      steps?.push({ event, stream, vmBefore: before, vmAfter: vm, ...step });
    }
    if (vm.config || vm.domain || vm.queue.length || vm.running) this.vms.set(vmId, vm);
    else this.vms.delete(vmId);
  }

  private applyTaskEvent(event: LogEvent): { taskBefore?: TaskRecord; taskAfter?: TaskRecord } {
    const taskId = taskIdOf(event);
    if (taskId === undefined) return {};
    const before = this.tasks.get(taskId);
    const after = evolveTask(before, event);
    const step = { ...(before ? { taskBefore: before } : {}), ...(after ? { taskAfter: after } : {}) };
    if (after === before) return step;
    if (after) this.tasks.set(taskId, after);
    else this.tasks.delete(taskId);
    const ended = after && after.status !== 'pending' && before?.status === 'pending' ? after : undefined;
    if (ended) {
      const outcome = { task: ended, seq: event.seq };
      const waiters = this.taskWaiters.get(taskId);
      if (waiters) {
        this.taskWaiters.delete(taskId);
        for (const w of waiters) w(outcome);
      } else if (ended.operation.autoDestroy) {
        this.unclaimedOutcomes.set(taskId, outcome);
        if (this.unclaimedOutcomes.size > MAX_UNCLAIMED_OUTCOMES) {
          this.unclaimedOutcomes.delete(this.unclaimedOutcomes.keys().next().value!);
        }
      }
    }
    return step;
  }

  private advance(seq: number): void {
    this.seqValue = seq;
    if (this.seqWaiters.length === 0) return;
    const ready = this.seqWaiters.filter((w) => w.seq <= seq);
    if (ready.length === 0) return;
    this.seqWaiters = this.seqWaiters.filter((w) => w.seq > seq);
    for (const w of ready) w.resolve();
  }
}
