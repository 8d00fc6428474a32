import {
  decodeBatch,
  emptyVm,
  evolveTask,
  evolveVm,
  taskIdOf,
  type EventLog,
  type LogEvent,
  type Subscription,
  type TaskRecord,
  type VmAggregate,
} from '@xenops/core';

const VM_STREAM_PREFIX = 'vm/';
const MAX_UNCLAIMED_OUTCOMES = 10_000;

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

  constructor(private readonly log: EventLog) {}

  /** Head seq folded so far. */
  get seq(): number {
    return this.seqValue;
  }

  get healthy(): boolean {
    return this.failure === undefined;
  }

  /** Folds the whole log, then follows it live. Resolves once caught up with the head at call time. */
  async start(): Promise<void> {
    const head = await this.log.head();
    this.subscription = this.log.tail(0, (m) => {
      try {
        if (m.stream.startsWith(VM_STREAM_PREFIX)) {
          this.applyVmMessage(m.stream.slice(VM_STREAM_PREFIX.length), decodeBatch(m.seq, m.data));
        } else {
          for (const event of decodeBatch(m.seq, m.data)) this.applyTaskEvent(event);
        }
      } catch (e) {
        this.failure = e as Error;
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

  private applyVmMessage(vmId: string, events: LogEvent[]): void {
    let vm = this.vms.get(vmId) ?? emptyVm(vmId);
    for (const event of events) {
      vm = evolveVm(vm, event);
      this.applyTaskEvent(event);
    }
    if (vm.config || vm.domain || vm.queue.length || vm.running) this.vms.set(vmId, vm);
    else this.vms.delete(vmId);
  }

  private applyTaskEvent(event: LogEvent): void {
    const taskId = taskIdOf(event);
    if (taskId === undefined) return;
    const before = this.tasks.get(taskId);
    const after = evolveTask(before, event);
    if (after === before) return;
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
