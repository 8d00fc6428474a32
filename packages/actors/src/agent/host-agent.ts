import {
  decodeCommand,
  DEFAULT_MAX_QUEUED_TASKS,
  emptyHost,
  emptyVm,
  encodeBatch,
  encodeReply,
  Errors,
  evolveHost,
  firstLine,
  foldBase,
  foldVmMessage,
  isLive,
  loadFoldSnapshot,
  readMessage,
  StoreUnavailableError,
  Streams,
  toErrorValue,
  type CommandReply,
  type CommandRequest,
  type DamagedMessage,
  type EventBody,
  type FoldSnapshotLoader,
  type PendingEvent,
  type Stores,
  type Subscription,
  type VmAggregate,
} from '@xenops/core';
import pLimit from 'p-limit';
import type { Backend } from '../backend/backend.js';
import { DomidAllocator } from '../backend/simulator/domids.js';
import { SimulatorBackend } from '../backend/simulator/simulator.js';
import { VmActor } from '../vm/vm-actor.js';

export interface HostAgentOptions {
  readonly stores: Stores;
  readonly hostId: string;
  /** Operations running at once on this host (API.md §7.2); default 16. */
  readonly poolSize?: number;
  readonly logger?: (line: string) => void;
  readonly now?: () => number;
  /** The hypervisor backend; default the simulator. */
  readonly createBackend?: (host: { readonly hostId: string; readonly domids: DomidAllocator; readonly now: () => number }) => Backend;
  /** Where recovery gets the fold snapshot (default: loads it from the store). */
  readonly loadFoldSnapshot?: FoldSnapshotLoader;
  /** How long a VM's actor stays up with nothing to do before it is put to sleep (default 2 s). */
  readonly idleActorSleepMs?: number;
  /** Each atom's time limit (API.md §7.2; default 1200 s). */
  readonly atomTimeoutMs?: number;
  /** Tasks that may wait on one VM's queue before a caller's operation is refused (default 1000). */
  readonly maxQueuedTasks?: number;
}

const VM_STREAM_PREFIX = 'vm/';

/**
 * The host agent: owns the VM actors of one host, serves their commands on the bus, and on start
 * restores them from the log, failing the tasks a previous process left executing (§7.1).
 */
export class HostAgent {
  private readonly actors = new Map<string, Promise<VmActor>>();
  /**
   * VMs whose actor was stopped while idle, by their last state: an XState actor per registered
   * VM cost ~4.5 KiB each (45 MiB of heap with 10,000 VMs). The next command starts a new actor
   * from this state without reading the log; if another writer appended meanwhile, its append is
   * refused (expected last seq) and the actor is reloaded from the log, as for any stale actor.
   */
  private readonly dormant = new Map<string, VmAggregate>();
  /** Commands being executed, per VM: an actor is never put to sleep under one. */
  private readonly inflight = new Map<string, number>();
  /**
   * Pending sleeps, per VM. Delayed so that a VM worked on call after call keeps its actor (a new
   * one per operation cost more CPU than it saved memory), and re-armed at every command and idle.
   */
  private readonly sleepTimers = new Map<string, NodeJS.Timeout>();
  private readonly workers: ReturnType<typeof pLimit>;
  private readonly domids = new DomidAllocator();
  /** Armed cancel triggers by task dbg (DEBUG set-cancel-trigger), rebuilt from the log on start. */
  private readonly cancelTriggers = new Map<string, number>();
  /** Seqs of damaged messages already logged. */
  private readonly reportedDamage = new Set<number>();
  private readonly backend: Backend;
  private readonly logger: (line: string) => void;
  private readonly now: () => number;
  private subscription?: Subscription;
  private closing = false;

  private constructor(private readonly opts: HostAgentOptions) {
    this.workers = pLimit(opts.poolSize ?? 16);
    this.logger = opts.logger ?? (() => {});
    this.now = opts.now ?? Date.now;
    const createBackend = opts.createBackend ?? ((h) => new SimulatorBackend(h.hostId, h.domids, h.now));
    this.backend = createBackend({ hostId: opts.hostId, domids: this.domids, now: this.now });
  }

  get hostId(): string {
    return this.opts.hostId;
  }

  static async start(opts: HostAgentOptions): Promise<HostAgent> {
    const agent = new HostAgent(opts);
    await agent.recover();
    agent.subscription = await opts.stores.bus.serve(opts.hostId, (data) => agent.handle(data));
    agent.logger(`agent ${opts.hostId}: serving commands`);
    return agent;
  }

  /** Changes the number of worker slots (HOST.set_worker_pool_size). */
  setPoolSize(size: number): void {
    this.workers.concurrency = size;
  }

  /** Stops taking commands, lets running operations finish (or fails them after the timeout). */
  async close(drainTimeoutMs = 10_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const timer of this.sleepTimers.values()) clearTimeout(timer);
    this.sleepTimers.clear();
    await this.subscription?.close();
    const actors = await Promise.allSettled([...this.actors.values()]);
    const drained = await Promise.all(
      actors.map(async (a) => (a.status === 'fulfilled' ? a.value.drain(drainTimeoutMs) : true)),
    );
    const aborted = drained.filter((ok) => !ok).length;
    for (const a of actors) if (a.status === 'fulfilled') a.value.stop();
    this.logger(`agent ${this.hostId}: stopped (${aborted} operation(s) aborted at the drain timeout)`);
  }

  private async handle(data: Uint8Array): Promise<Uint8Array> {
    let request: CommandRequest;
    try {
      request = decodeCommand(data);
    } catch (e) {
      return encodeReply({ ok: false, seq: 0, error: ['Internal_error', (e as Error).message] });
    }
    return encodeReply(await this.execute(request));
  }

  /** Runs a command on its VM's actor, reloading the actor when another writer got there first. */
  async execute(incoming: CommandRequest): Promise<CommandReply> {
    let request = incoming;
    if (this.closing) return { ok: false, seq: 0, error: ['Internal_error', `agent ${this.hostId} is shutting down`] };
    let { command } = request;
    switch (command.type) {
      case 'SetPoolSize': {
        const size = command.size;
        return this.recordHostSetting(request.dbg, 'pool_size', size, () => this.setPoolSize(size));
      }
      case 'SetCancelTrigger':
        return this.recordHostEvent(request.dbg, { type: 'CancelTriggerSet', dbg: command.dbg, point: command.point });
      case 'Diagnose':
        return { ok: true, seq: 0, value: await this.diagnose() };
      case 'SubmitOperation': {
        // DEBUG set-cancel-trigger (§8.3): the next task whose dbg (first line) matches uses it up.
        const key = firstLine(request.dbg);
        const point = this.cancelTriggers.get(key);
        if (point !== undefined) {
          this.cancelTriggers.delete(key);
          command = { ...command, operation: { ...command.operation, cancelAtPoint: point } };
          request = { ...request, command };
          const reply = await this.executeOnVm(command.vmId, request);
          // One-shot: the trigger is used up by this task even if it ends before point n.
          if (reply.ok) await this.recordHostEvent(request.dbg, { type: 'CancelTriggerUsed', dbg: key, taskId: String(reply.value) });
          else this.cancelTriggers.set(key, point);
          return reply;
        }
        break;
      }
    }
    const vmId = command.type === 'AddVm' ? command.config.id : command.type === 'AddDevice' ? command.device.config.id[0] : command.vmId;
    return this.executeOnVm(vmId, request);
  }

  private async executeOnVm(vmId: string, request: CommandRequest): Promise<CommandReply> {
    this.inflight.set(vmId, (this.inflight.get(vmId) ?? 0) + 1);
    try {
      for (let attempt = 1; ; attempt++) {
        const actor = await this.actorFor(vmId);
        try {
          return await actor.handle(request);
        } catch (e) {
          if (actor.stalled && attempt < 3) {
            this.evict(vmId, actor);
            continue;
          }
          this.logger(`agent ${this.hostId}: command ${request.command.type} on vm ${vmId} failed: ${(e as Error).message}`);
          return { ok: false, seq: 0, error: toErrorValue(e) };
        }
      }
    } finally {
      const n = (this.inflight.get(vmId) ?? 1) - 1;
      if (n > 0) this.inflight.set(vmId, n);
      else {
        this.inflight.delete(vmId);
        this.scheduleSleep(vmId);
      }
    }
  }

  private scheduleSleep(vmId: string): void {
    if (this.closing) return;
    clearTimeout(this.sleepTimers.get(vmId));
    const timer = setTimeout(() => {
      this.sleepTimers.delete(vmId);
      this.sleepIfIdle(vmId);
    }, this.opts.idleActorSleepMs ?? 2_000);
    timer.unref();
    this.sleepTimers.set(vmId, timer);
  }

  /** Stops the VM's actor if it has nothing to do, keeping its state for the next command. */
  private sleepIfIdle(vmId: string): void {
    const pending = this.actors.get(vmId);
    if (!pending || this.closing || this.inflight.has(vmId)) return;
    pending.then(
      (actor) => {
        // Checked again now: a command may have arrived while the promise settled.
        if (this.closing || this.actors.get(vmId) !== pending || this.inflight.has(vmId) || !actor.idle) return;
        this.actors.delete(vmId);
        actor.stop();
        // A removed VM's history stays in the log; a new actor for its id reads it from there.
        if (isLive(actor.state)) this.dormant.set(vmId, actor.state);
      },
      () => undefined,
    );
  }

  private actorFor(vmId: string, restored?: VmAggregate): Promise<VmActor> {
    let actor = this.actors.get(vmId);
    if (!actor) {
      const known = restored ?? this.dormant.get(vmId);
      this.dormant.delete(vmId);
      actor = this.restore(vmId, known);
      this.actors.set(vmId, actor);
      actor.catch(() => this.actors.delete(vmId));
    }
    return actor;
  }

  /**
   * Supervision: an actor whose write failed (the store was unreachable) is replaced by one
   * restored from the log, retrying with a growing delay until the log answers. Its queued tasks
   * then run, and a task it left executing ends Failed (as after a restart), so every task ends.
   */
  private revive(vmId: string, stalled: VmActor, attempt = 1): void {
    if (this.closing) return;
    const delay = Math.min(10_000, 250 * 2 ** (attempt - 1));
    const timer = setTimeout(async () => {
      const current = await this.actors.get(vmId)?.catch(() => undefined);
      if (current && current !== stalled) return; // a command already reloaded it
      this.evict(vmId, stalled);
      try {
        await this.actorFor(vmId);
        this.logger(`agent ${this.hostId}: vm ${vmId}: reloaded from the log after a failed write`);
      } catch (e) {
        this.logger(`agent ${this.hostId}: vm ${vmId}: cannot reload yet (${(e as Error).message}); retrying`);
        this.revive(vmId, stalled, attempt + 1);
      }
    }, delay);
    timer.unref();
  }

  private evict(vmId: string, actor: VmActor): void {
    actor.stop();
    this.actors.delete(vmId);
    this.dormant.delete(vmId); // its state is not trusted: the next actor reads the log
  }

  /** Folds the VM's stream, fails a task this host left executing, and starts the actor. */
  private async restore(vmId: string, known?: VmAggregate): Promise<VmActor> {
    let vm = known ?? emptyVm(vmId);
    if (!known) {
      const { log, snapshots } = this.opts.stores;
      // Once retention truncated the log, the VM's history starts in the covering snapshot.
      // Asking for the stream's last seq first spares a new VM (the common case: VM.add) the read
      // of an empty stream, which on NATS means creating a consumer. Both are reads: asked at once
      // (one round trip to NATS instead of two).
      const [base, last] = await Promise.all([foldBase(log, snapshots), log.lastSeqOf(Streams.vm(vmId))]);
      vm = base.snapshot?.vms.find((v) => v.id === vmId) ?? vm;
      if (last > base.seq) {
        for await (const m of log.readStream(Streams.vm(vmId), base.seq)) {
          const folded = foldVmMessage(vm, m);
          if (folded.damage) this.reportDamage(folded.damage);
          vm = folded.vm;
        }
      } else if (last !== vm.version) {
        // Truncated away: the next append expects the stream's last seq as the log knows it (0).
        vm = { ...vm, version: last };
      }
    }
    const actor = new VmActor(vm, {
      hostId: this.hostId,
      log: this.opts.stores.log,
      backend: this.backend,
      workers: this.workers,
      now: this.now,
      logger: this.logger,
      atomTimeoutMs: this.opts.atomTimeoutMs,
      maxQueuedTasks: this.opts.maxQueuedTasks ?? DEFAULT_MAX_QUEUED_TASKS,
      onStalled: (stalled) => this.revive(vmId, stalled),
      // A task that ended with no command in flight.
      onIdle: () => this.scheduleSleep(vmId),
    });
    // A quarantined VM's stream is never written again: its interrupted task stays as the log left it.
    const interrupted = vm.quarantine ? undefined : vm.running;
    if (interrupted && interrupted.host === this.hostId) {
      const audit = { dbg: interrupted.dbg, timeMs: this.now(), host: this.hostId, actor: `host/${this.hostId}` };
      const events: PendingEvent[] = [
        { audit, body: { type: 'TaskFailed', taskId: interrupted.taskId, error: Errors.interruptedByRestart().value, cancelPointsSeen: 0, duration: 0 } },
        ...(interrupted.operation.autoDestroy ? [{ audit, body: { type: 'TaskDestroyed' as const, taskId: interrupted.taskId } }] : []),
        {
          audit: { ...audit, dbg: 'internal:check_state' },
          body: {
            type: 'TaskCreated',
            vmId,
            operation: { kind: 'VM.check_state', reason: 'interrupted by service restart', autoDestroy: true },
            host: this.hostId,
            ctimeMs: this.now(),
          },
        },
      ];
      await actor.append(events);
      this.logger(`agent ${this.hostId}: vm ${vmId}: task ${interrupted.taskId} failed: interrupted by service restart`);
    }
    return actor;
  }

  /** A message this agent cannot read: said once per seq (the gateway's /healthz lists them all). */
  private reportDamage(d: DamagedMessage): void {
    if (this.reportedDamage.has(d.seq)) return;
    this.reportedDamage.add(d.seq);
    const quarantine = d.vm === undefined ? '' : `; VM ${d.vm} is quarantined (its commands are refused)`;
    this.logger(`agent ${this.hostId}: the log is damaged at seq ${d.seq} (${d.stream}): ${d.error}${quarantine}`);
  }

  /** Appends a host-level fact to `host/<id>` (this agent is its only writer) and applies it. */
  private async recordHostEvent(dbg: string, body: EventBody, apply?: () => void): Promise<CommandReply> {
    const audit = { dbg, timeMs: this.now(), host: this.hostId, actor: `host/${this.hostId}` };
    const seq = await this.opts.stores.log.append({ stream: Streams.host(this.hostId), data: encodeBatch([{ audit, body }]) });
    if (body.type === 'CancelTriggerSet') this.cancelTriggers.set(body.dbg, body.point);
    else if (body.type === 'CancelTriggerUsed') this.cancelTriggers.delete(body.dbg);
    apply?.();
    return { ok: true, seq, value: null };
  }

  private recordHostSetting(dbg: string, key: string, value: unknown, apply: () => void): Promise<CommandReply> {
    return this.recordHostEvent(dbg, { type: 'HostSettingChanged', hostId: this.hostId, key, value }, apply);
  }

  /** get_diagnostics: what this agent is doing now. */
  private async diagnose(): Promise<unknown> {
    const queues: Record<string, string[]> = {};
    let busy = 0;
    for (const pending of this.actors.values()) {
      const actor = await pending.catch(() => undefined);
      if (!actor) continue;
      const vm = actor.state;
      if (vm.running) busy++;
      const ids = [...(vm.running ? [vm.running.taskId] : []), ...vm.queue.map((t) => t.taskId)];
      if (ids.length) queues[vm.id] = ids;
    }
    return {
      workers: { size: this.workers.concurrency, busy },
      queues,
      cancel_triggers: Object.fromEntries(this.cancelTriggers),
      actors: { awake: this.actors.size, asleep: this.dormant.size },
    };
  }

  /**
   * Reads the log once, from the latest fold snapshot if there is one: domids in use on this host,
   * this host's settings, and VMs with work left for this host.
   */
  private async recover(): Promise<void> {
    const { log, snapshots } = this.opts.stores;
    const vms = new Map<string, VmAggregate>();
    let host = emptyHost();
    let from = 0;
    const snapshot = await (this.opts.loadFoldSnapshot ?? (() => loadFoldSnapshot(snapshots)))().catch((e: unknown) => {
      this.logger(`agent ${this.hostId}: cannot load the fold snapshot (${(e as Error).message}); reading the whole log`);
      return undefined;
    });
    const first = await log.firstSeq();
    if (first > (snapshot?.seq ?? 0) + 1) {
      throw new StoreUnavailableError(`the log starts at seq ${first} (retention) but the newest fold snapshot is at seq ${snapshot?.seq ?? 0}`);
    }
    if (snapshot && snapshot.seq <= (await log.head())) {
      for (const vm of snapshot.vms) vms.set(vm.id, vm);
      for (const [h, domid] of snapshot.domids) if (h === this.hostId) this.domids.observe(domid);
      for (const [h, state] of snapshot.hosts) if (h === this.hostId) host = state;
      from = snapshot.seq;
    }
    let messages = 0;
    for await (const m of log.read(from)) {
      messages++;
      if (m.stream === Streams.host(this.hostId)) {
        // A damaged setting or trigger is lost (reported); the host goes on with the others.
        const read = readMessage(m);
        if (read.damage) this.reportDamage(read.damage);
        else for (const event of read.events) host = evolveHost(host, event);
        continue;
      }
      if (!m.stream.startsWith(VM_STREAM_PREFIX)) continue;
      const vmId = m.stream.slice(VM_STREAM_PREFIX.length);
      // One immutable update per message, as every other fold of the log.
      const folded = foldVmMessage(vms.get(vmId) ?? emptyVm(vmId), m);
      if (folded.damage) this.reportDamage(folded.damage);
      for (const event of folded.events) {
        if (event.body.type === 'DomainCreated' && event.body.host === this.hostId) this.domids.observe(event.body.domid);
      }
      vms.set(vmId, folded.vm);
    }
    for (const [dbg, point] of host.cancelTriggers) this.cancelTriggers.set(dbg, point);
    if (host.poolSize !== undefined) this.setPoolSize(host.poolSize);
    const origin = snapshot && from > 0 ? `the snapshot at seq ${from} and ` : '';
    let resumed = 0;
    let quarantined = 0;
    for (const vm of vms.values()) {
      if (vm.quarantine) quarantined++;
      const mine = (vm.running?.host ?? vm.queue[0]?.host) === this.hostId;
      // Nothing runs on a quarantined VM: its queued work stays queued, every command is refused.
      if (!mine || vm.quarantine) continue;
      resumed++;
      await this.actorFor(vm.id, vm);
    }
    const refused = quarantined ? `; ${quarantined} quarantined by a damaged log (see xenops verify)` : '';
    this.logger(`agent ${this.hostId}: recovered ${vms.size} VM(s) from ${origin}${messages} log message(s); ${resumed} with unfinished work${refused}`);
  }
}
