import {
  atomMayWait,
  decide,
  planOperation,
  resolveTaskOfMessage,
  TASK_OF_THIS_MESSAGE,
  withAudit,
  encodeBatch,
  evolveVmAll,
  Streams,
  UndecodableEventError,
  XenopsError,
  type CommandReply,
  type DecideContext,
  type Decision,
  type EngineInput,
  type EventLog,
  type PendingEvent,
  type QueuedTask,
  type VmAggregate,
  type VmInput,
} from '@xenops/core';
import pLimit from 'p-limit';
import { createActor, type Actor } from 'xstate';
import type { Backend } from '../backend/backend.js';
import { LogWriteError, runTask, type TaskHost } from '../operations/run-task.js';
import { hasWorkToRun, vmMachine } from './vm-machine.js';

export interface VmActorDeps {
  readonly hostId: string;
  readonly log: EventLog;
  readonly backend: Backend;
  /** Host-wide worker slots (API.md §7.2: pool_size operations at once per host). */
  readonly workers: ReturnType<typeof pLimit>;
  readonly now: () => number;
  readonly logger: (line: string) => void;
  /** Each atom's time limit (default 1200 s, API.md §7.2). */
  readonly atomTimeoutMs?: number;
  /** Tasks that may wait on the queue before a caller's operation is refused; absent: no bound. */
  readonly maxQueuedTasks?: number;
  /** Engine setting `crash_loop_window_s` (§7.5; default 120). */
  readonly crashLoopWindowS?: number;
  /** Called once when the actor can no longer trust its state (a write failed): the agent reloads it. */
  readonly onStalled?: (actor: VmActor) => void;
  /** Called (synchronously, from the machine) each time the actor stops executing. */
  readonly onIdle?: () => void;
  /** A migration's switch-over passed the VM and its running task to `destination`'s agent (§7.8). */
  readonly onHandedOver?: (taskId: string, destination: string, state: VmAggregate) => void;
}

/**
 * One VM's actor: the XState machine that schedules its tasks, plus the single writer of its
 * stream. Commands and task steps are serialized through `exclusive`, so every decision sees the
 * state left by the previous one and appends with the right expected sequence.
 */
export class VmActor {
  private vm: VmAggregate;
  private readonly machine: Actor<typeof vmMachine>;
  private chain: Promise<unknown> = Promise.resolve();
  private running?: { readonly taskId: string; readonly abort: AbortController };
  private idleWaiters: Array<() => void> = [];
  /** Commands and task steps queued on `exclusive` and not finished. */
  private inExclusive = 0;
  /** Set when the log rejected a write: the agent must reload this VM. */
  stalled = false;

  constructor(
    initial: VmAggregate,
    private readonly deps: VmActorDeps,
  ) {
    this.vm = initial;
    this.machine = createActor(vmMachine, { input: { vm: initial, executeNext: () => this.executeNextTask(), hostId: deps.hostId }, id: `vm/${initial.id}` });
    this.machine.subscribe({
      next: (snapshot) => {
        if (snapshot.value === 'stalled') this.markStalled();
        if (snapshot.value !== 'executing') this.notifyIdle();
      },
      error: (e) => {
        this.markStalled();
        deps.logger(`vm ${initial.id}: actor stopped: ${String(e)}`);
      },
    });
    this.machine.start();
  }

  get id(): string {
    return this.vm.id;
  }

  get state(): VmAggregate {
    return this.vm;
  }

  get busy(): boolean {
    return this.machine.getSnapshot().value === 'executing';
  }

  /**
   * Nothing queued, nothing running, nothing in flight, state trusted: everything this actor
   * knows is `state`, so the agent may stop it and later start a new one from that state.
   */
  get idle(): boolean {
    // A quarantined VM's queue never runs: it does not keep the actor awake.
    // A task handed over to another host by a migration is that host's work now.
    const runningHere = this.vm.running !== undefined && this.vm.running.host === this.deps.hostId;
    const workLeft = this.vm.quarantine === undefined && (this.vm.queue.length > 0 || runningHere);
    return !this.stalled && !this.busy && this.running === undefined && this.inExclusive === 0 && !workLeft;
  }

  /**
   * Decides a command of the bus (or an input of the engine: recovery, a domain event) against
   * the current state and appends its events before replying.
   */
  handle(input: VmInput, dbg: string): Promise<CommandReply> {
    return this.exclusive(async () => {
      const decision = decide(this.decisionState(), input, this.context());
      if (decision instanceof XenopsError) return { ok: false, seq: this.vm.version, error: decision.value };
      if (decision.events.length === 0) return { ok: true, seq: this.vm.version, value: decision.reply(this.vm.version) };
      const events = withAudit(decision.events, this.audit(dbg));
      const created = this.runnableAtOnce(events);
      if (created) {
        const seq = await this.runInCall(created, events);
        return { ok: true, seq, value: decision.reply(seq) };
      }
      const seq = await this.appendUnlocked(events);
      if (decision.abortRunning && this.running) this.running.abort.abort();
      return { ok: true, seq, value: decision.reply(seq) };
    });
  }

  private context(): DecideContext {
    const { hostId, maxQueuedTasks, crashLoopWindowS } = this.deps;
    return { hostId, nowMs: this.deps.now(), maxQueuedTasks, crashLoopWindowS };
  }

  private audit(dbg: string) {
    return { dbg, timeMs: this.deps.now(), host: this.deps.hostId, actor: `vm/${this.vm.id}` };
  }

  /** A step of the running task, decided against the task's view of the VM (its facts not written yet included). */
  private decideStep(vm: VmAggregate, input: EngineInput, dbg: string): { decision: Decision; events: PendingEvent[] } | XenopsError {
    const decision = decide(vm, input, this.context());
    if (decision instanceof XenopsError) return decision;
    return { decision, events: withAudit(decision.events, this.audit(dbg)) };
  }

  /**
   * The state decisions are made against: the log's, except that the task executing now counts
   * as running even before its start is written (a task's first steps may share one message).
   */
  private decisionState(): VmAggregate {
    const executing = this.running?.taskId;
    const vm = this.vm;
    if (executing === undefined || vm.running?.taskId === executing) return vm;
    const task = vm.queue.find((t) => t.taskId === executing);
    return task ? { ...vm, running: task, queue: vm.queue.filter((t) => t !== task) } : vm;
  }

  /** Appends a batch as the VM's single writer and folds it into the state. */
  append(events: readonly PendingEvent[]): Promise<number> {
    return this.exclusive(() => this.appendUnlocked(events));
  }

  /**
   * The task `events` queue, when it can run in this very call (`instantAtoms`): the backend's
   * atoms are instant, nothing runs, waits or is queued on this VM, a worker is free, and the task
   * can neither wait (guest acknowledgement, delay, save, migration) nor meet a cancel trigger.
   * Anything else is queued and run by the machine, as always.
   */
  private runnableAtOnce(events: readonly PendingEvent[]): QueuedTask | undefined {
    const { backend, workers, hostId } = this.deps;
    if (!backend.capabilities.instantAtoms || backend.capabilities.journalsEachAtom) return undefined;
    const created = events.length === 1 ? events[0]! : undefined;
    if (created?.body.type !== 'TaskCreated' || created.body.host !== hostId || created.body.operation.cancelAtPoint !== undefined) return undefined;
    if (this.stalled || this.running || this.vm.running || this.vm.queue.length > 0) return undefined;
    const machine = this.machine.getSnapshot();
    if (machine.status !== 'active' || machine.value !== 'idle' || machine.context.draining) return undefined;
    if (workers.activeCount >= workers.concurrency || workers.pendingCount > 0) return undefined;
    const view = evolveVmAll(this.vm, [{ seq: Number(TASK_OF_THIS_MESSAGE), audit: created.audit, body: created.body }]);
    const task = view.queue[0];
    if (!task) return undefined;
    const plan = planOperation(task.operation, view);
    if (plan.ok && (plan.atoms.some(atomMayWait) || plan.compensate?.some(atomMayWait))) return undefined;
    return task;
  }

  /**
   * Runs `task` now, inside the command that queued it: its creation and its steps are written
   * together (one message, or two when its failure queues a state check), and the command's reply
   * names the message that created it. Nothing is written if the first write fails.
   */
  private async runInCall(task: QueuedTask, createdWith: readonly PendingEvent[]): Promise<number> {
    const abort = new AbortController();
    this.running = { taskId: task.taskId, abort };
    let created: number | undefined;
    let refused: unknown;
    try {
      await this.deps.workers(() =>
        runTask(task, {
          // The command holds this VM's turn: the task's writes go straight to the log.
          host: this.taskHost(async (events) => {
            // A first write the log refused (nothing written): nothing else may be, and the
            // caller gets that refusal, as if the task had been queued alone.
            if (refused !== undefined) throw refused;
            try {
              const seq = await this.appendUnlocked(events);
              created ??= seq;
              return seq;
            } catch (e) {
              if (created === undefined) refused = e;
              throw e;
            }
          }),
          backend: this.deps.backend,
          signal: abort.signal,
          now: this.deps.now,
          atomTimeoutMs: this.deps.atomTimeoutMs,
          logger: (line) => this.deps.logger(`vm ${this.vm.id}: ${line}`),
          createdWith,
        }),
      );
    } catch (e) {
      // Created, then a later write failed (the actor stalls and is reloaded): the task exists.
      if (created === undefined) throw refused ?? e;
      this.deps.logger(`vm ${this.vm.id}: task ${created}: ${(e as Error).message}`);
    } finally {
      this.running = undefined;
      this.notifyIdle();
    }
    if (created === undefined) throw refused ?? new LogWriteError(`vm ${this.vm.id}: the task run in its call wrote nothing`);
    return created;
  }

  /** Stops starting queued tasks and waits for the running one (if any) to end. */
  async drain(timeoutMs: number): Promise<boolean> {
    // A machine that stalled (a failed write) has stopped: it runs nothing any more.
    if (this.machine.getSnapshot().status !== 'active') return true;
    this.machine.send({ type: 'agent.draining' });
    if (!this.busy && !this.running) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => {
      this.idleWaiters.push(() => resolve(true));
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const finished = await idle;
    clearTimeout(timer);
    if (!finished) this.running?.abort.abort();
    return finished;
  }

  stop(): void {
    this.machine.stop();
  }

  private async appendUnlocked(events: readonly PendingEvent[]): Promise<number> {
    const stream = Streams.vm(this.vm.id);
    const data = encodeBatch(events);
    let seq: number;
    try {
      seq = await this.deps.log.append({ stream, data, expectedLastSeq: this.vm.version });
    } catch (e) {
      // Refused before anything was written: the log and this actor still agree, and the caller
      // (a command, or a task that then fails) reports it.
      if (e instanceof UndecodableEventError) throw e;
      // Whether it landed or not (or another writer got there first), the log may now differ
      // from what this actor believes.
      this.markStalled();
      throw new LogWriteError(`vm ${this.vm.id}: cannot append to the log: ${(e as Error).message}`, { cause: e });
    }
    // Fold the events just written with the seq the log gave them: the same evolve the read
    // models apply to the decoded message (the codec's round trip is covered by property tests).
    const before = this.vm;
    const vm = evolveVmAll(before, events.map(({ audit, body }) => resolveTaskOfMessage(seq, { seq, audit, body })));
    this.vm = vm;
    // The machine only schedules work: it needs to hear of changes to the queue or the running task.
    if (vm.queue !== before.queue || vm.running !== before.running) this.machine.send({ type: 'vm.changed', vm });
    return seq;
  }

  /**
   * A failed write leaves this actor unsure of its own stream: it stops scheduling and asks to be
   * reloaded from the log (a command that hits it first reloads it inline instead).
   */
  private markStalled(): void {
    if (this.stalled) return;
    this.stalled = true;
    this.deps.onStalled?.(this);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.inExclusive++;
    const result = this.chain.then(fn).finally(() => this.inExclusive--);
    this.chain = result.catch(() => undefined);
    return result;
  }

  private executeNextTask(): Promise<void> {
    return this.deps.workers(async () => {
      const receiving = this.vm.running && hasWorkToRun(this.vm, this.deps.hostId) ? this.vm.running : undefined;
      const task = receiving ?? this.vm.queue[0];
      if (!task || (this.vm.running && !receiving)) return;
      const abort = new AbortController();
      this.running = { taskId: task.taskId, abort };
      try {
        await runTask(task, {
          host: this.taskHost((events) => this.append(events)),
          backend: this.deps.backend,
          signal: abort.signal,
          now: this.deps.now,
          atomTimeoutMs: this.deps.atomTimeoutMs,
          logger: (line) => this.deps.logger(`vm ${this.vm.id}: ${line}`),
          ...(receiving ? { begin: 'receive' as const } : {}),
        });
        const after = this.vm.running;
        if (after?.taskId === task.taskId && after.host !== this.deps.hostId && after.migration?.handedOver) this.deps.onHandedOver?.(task.taskId, after.host, this.vm);
      } finally {
        this.running = undefined;
      }
    });
  }

  /** The actor as a running task sees it, its writes going through `append`. */
  private taskHost(append: TaskHost['append']): TaskHost {
    const actor = this;
    return {
      hostId: this.deps.hostId,
      get vm() {
        return actor.vm;
      },
      get stalled() {
        return actor.stalled;
      },
      decide: (vm, input, dbg) => this.decideStep(vm, input, dbg),
      append,
    };
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    this.deps.onIdle?.();
  }
}
