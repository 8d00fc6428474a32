import {
  ANY_AGENT,
  checkDebugTriggerVm,
  debugTriggerTarget,
  decideHost,
  decodeCommand,
  decodeReply,
  encodeCommand,
  DEFAULT_MAX_QUEUED_TASKS,
  emptyHost,
  emptyVm,
  encodeBatch,
  encodeReply,
  Errors,
  evolveHost,
  firstLine,
  foldBase,
  findDamage,
  foldVmMessage,
  isLive,
  loadFoldSnapshot,
  notOwnerError,
  ownerNamedBy,
  ownerOf,
  quarantined,
  StoreUnavailableError,
  Streams,
  toErrorValue,
  XenopsError,
  type Command,
  type CommandReply,
  type CommandRequest,
  type DamagedMessage,
  type DomainEvent,
  type FoldSnapshotLoader,
  type HostFacts,
  type HostCommand,
  type HostInput,
  type HostState,
  type ReadModelFold,
  type Stores,
  type Subscription,
  type VmAggregate,
  type VmInput,
} from '@xenops/core';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type { Backend, KnownDomain } from '../backend/backend.js';
import { SimulatorBackend } from '../backend/simulator/simulator.js';
import { VmActor } from '../vm/vm-actor.js';
import { faultPoint } from './fault-points.js';
import { decodeHandedState, encodeHandedState } from './handed-state.js';
import { AgentMigrationLink } from './migration-link.js';
import { catchUp, fullStart, loadAgentSnapshot, saveAgentSnapshot, type AgentState, type FoldStart } from './agent-state.js';

export interface HostAgentOptions {
  readonly stores: Stores;
  readonly hostId: string;
  /** Operations running at once on this host (API.md §7.2); default 16. */
  readonly poolSize?: number;
  readonly logger?: (line: string) => void;
  readonly now?: () => number;
  /** The hypervisor backend, not started yet (the agent starts and closes it); default the simulator. */
  readonly backend?: Backend;
  /** The agent's data directory (the backend keeps its own little state there); absent: nothing is kept on disk. */
  readonly dataDir?: string;
  /** Where recovery gets the fold snapshot when the agent has no snapshot of its own (default: loads it from the store). */
  readonly loadFoldSnapshot?: FoldSnapshotLoader;
  /**
   * The fold of a read model in the same process, folded to the head just before the agent starts:
   * recovery starts from it instead of the agent's own snapshot when it is newer (see `recover`).
   */
  readonly foldOfReadModel?: () => Promise<ReadModelFold>;
  /** How long a VM's actor stays up with nothing to do before it is put to sleep (default 2 s). */
  readonly idleActorSleepMs?: number;
  /** Each atom's time limit (API.md §7.2; default 1200 s). */
  readonly atomTimeoutMs?: number;
  /** Tasks that may wait on one VM's queue before a caller's operation is refused (default 1000). */
  readonly maxQueuedTasks?: number;
  /** Engine setting `crash_loop_window_s` (§7.5; default 120). */
  readonly crashLoopWindowS?: number;
  /**
   * Messages of the log between two snapshots of the agent: this many (default 5000), or as many
   * as its last snapshot held VMs when that is more (a snapshot loads, folds and stores them all).
   */
  readonly snapshotEvery?: number;
  /** How often the agent looks whether a snapshot is due (default 30 s). */
  readonly snapshotCheckMs?: number;
  /** The largest piece of a migration's state in one bus message (default 256 KiB). */
  readonly migrationChunkBytes?: number;
}

/**
 * The host agent: owns the VM actors of one host, serves their commands on the bus (its host's
 * address, and the address every agent serves for commands any agent may decide), and on start
 * restores itself from its own snapshot and the log after it, has the backend adopt or check the
 * domains the log knows, and fails the tasks a previous process left executing (§7.1).
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
  /** This host's settings and cancel triggers, as the log has them and this agent decided them. */
  private host: HostState = emptyHost();
  /**
   * What recovery read, kept until the agent's first snapshot holds it (its VMs are the actors'
   * own states, so this costs little); later snapshots start from the stored one instead, so the
   * agent never keeps a second copy of its VMs.
   */
  private recovered?: AgentState;
  /** The seq of the snapshot stored for this agent (-1: none), when it was written, and its VMs. */
  private storedSnapshotSeq = -1;
  private storedSnapshotAt = 0;
  private storedSnapshotVms = 0;
  /** Damage the integrity scan found that the stored snapshot does not show yet. */
  private readonly unsnapshottedDamage = new Map<string, DamagedMessage>();
  /** Damage the integrity scan found in the range the start snapshot covers: those VMs are read again from the log. */
  private readonly lateDamage = new Map<string, DamagedMessage>();
  /** Seqs of damaged messages already logged. */
  private readonly reportedDamage = new Set<number>();
  /** VMs whose actor dropped its work because a write failed: their interrupted task says so. */
  private readonly stalledOnWrite = new Set<string>();
  /** DEBUG.trigger calls in progress, by VM: the domain events they cause carry their dbg and are awaited. */
  private readonly triggers = new Map<string, { readonly dbg: string; readonly handled: Array<Promise<number>> }>();
  private readonly backend: Backend;
  /** Migrations' states between this agent and the others (§7.8). */
  private readonly migrations: AgentMigrationLink;
  /** Migrations this host's backend got ready to receive, until they pass here or end elsewhere. */
  private readonly preparedMigrations = new Set<string>();
  private readonly logger: (line: string) => void;
  private readonly now: () => number;
  private subscriptions: Subscription[] = [];
  private unsubscribeDomainEvents?: () => void;
  private snapshotTimer?: NodeJS.Timeout;
  private snapshotting?: Promise<void>;
  private closing = false;

  private constructor(private readonly opts: HostAgentOptions) {
    this.workers = pLimit(opts.poolSize ?? 16);
    this.logger = opts.logger ?? (() => {});
    this.now = opts.now ?? Date.now;
    this.backend = opts.backend ?? new SimulatorBackend();
    this.migrations = new AgentMigrationLink(opts.stores.bus, {
      ...(opts.migrationChunkBytes !== undefined ? { chunkBytes: opts.migrationChunkBytes } : {}),
      onComplete: (vmId, transferId) => void this.awaitSwitchOver(vmId, transferId),
    });
  }

  get hostId(): string {
    return this.opts.hostId;
  }

  /** The backend's name and what it reports of this host: what the host registry shows (§9.7). */
  async hostFacts(): Promise<{ readonly backend: string; readonly facts: HostFacts }> {
    return { backend: this.backend.name, facts: await this.backend.hostFacts() };
  }

  static async start(opts: HostAgentOptions): Promise<HostAgent> {
    const agent = new HostAgent(opts);
    const state = await agent.recover();
    await agent.startBackend(state);
    await agent.resume(state);
    const handler = (data: Uint8Array) => agent.handle(data);
    agent.subscriptions = [await opts.stores.bus.serve(opts.hostId, handler), await opts.stores.bus.serve(ANY_AGENT, handler)];
    agent.snapshotTimer = setInterval(() => agent.snapshotIfDue(), opts.snapshotCheckMs ?? 30_000);
    agent.snapshotTimer.unref();
    agent.logger(`agent ${opts.hostId}: serving commands (backend ${agent.backend.name})`);
    return agent;
  }

  /** Changes the number of worker slots (HOST.set_worker_pool_size). */
  setPoolSize(size: number): void {
    this.workers.concurrency = size;
  }

  /**
   * Stops taking commands, lets running operations finish (or fails them after the timeout),
   * writes the agent's snapshot and closes the backend.
   */
  async close(drainTimeoutMs = 10_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.snapshotTimer);
    for (const timer of this.sleepTimers.values()) clearTimeout(timer);
    this.sleepTimers.clear();
    await Promise.all(this.subscriptions.map((s) => s.close()));
    this.unsubscribeDomainEvents?.();
    const actors = await Promise.allSettled([...this.actors.values()]);
    const drained = await Promise.all(actors.map(async (a) => (a.status === 'fulfilled' ? a.value.drain(drainTimeoutMs) : true)));
    const aborted = drained.filter((ok) => !ok).length;
    for (const a of actors) if (a.status === 'fulfilled') a.value.stop();
    // The integrity scan is not awaited: on a long log it takes a while, and the next start scans again.
    await this.snapshotting;
    this.migrations.close();
    await this.writeSnapshot();
    await this.backend.close().catch((e: unknown) => this.logger(`agent ${this.hostId}: closing the ${this.backend.name} backend failed: ${(e as Error).message}`));
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

  /** Runs a command: on the host (settings, DEBUG, facts) or on its VM's actor. */
  async execute(request: CommandRequest): Promise<CommandReply> {
    if (this.closing) return { ok: false, seq: 0, error: ['Internal_error', `agent ${this.hostId} is shutting down`] };
    const { command, dbg } = request;
    try {
      switch (command.type) {
        case 'SetPoolSize': {
          const size = command.size;
          return await this.decideForHost(dbg, { type: 'SetPoolSize', size });
        }
        case 'SetHostSetting':
          return await this.decideForHost(dbg, { type: 'SetHostSetting', key: command.key, value: command.value });
        case 'Diagnose':
          return { ok: true, seq: 0, value: await this.diagnose() };
        case 'HostFacts':
          return { ok: true, seq: 0, value: await this.backend.hostFacts() };
        case 'DebugTrigger':
          return await this.debugTrigger(dbg, command.cmd, command.args);
        case 'SubmitOperation':
          return await this.submit(request, command);
        case 'MigrationChunk':
          // Only the simulator streams its domains' state through the agents; a backend that
          // migrates by itself (QEMU over TCP) cannot take it, and says so before anything changes.
          if (this.backend.prepareMigration) {
            return { ok: false, seq: 0, error: Errors.internal(`host ${this.hostId} runs the ${this.backend.name} backend: it cannot take a simulated domain's state`).value };
          }
          this.migrations.receive(command);
          return { ok: true, seq: 0, value: null };
        case 'MigrationPrepare':
          return { ok: true, seq: 0, value: await this.prepareMigration(command.vmId, command.transferId, command.payload) };
        case 'TakeOverMigration':
          await this.takeOverMigration(command.vmId, command.taskId, command.state);
          return { ok: true, seq: 0, value: null };
        default:
          return await this.executeOnVm(vmOf(command), command, dbg);
      }
    } catch (e) {
      this.logger(`agent ${this.hostId}: command ${command.type} failed: ${(e as Error).message}`);
      return { ok: false, seq: 0, error: toErrorValue(e) };
    }
  }

  /**
   * SubmitOperation. DEBUG set-cancel-trigger (§8.3): the next task whose dbg (first line) matches
   * an armed trigger uses it up, even if it ends before the point.
   */
  private async submit(request: CommandRequest, command: Extract<Command, { type: 'SubmitOperation' }>): Promise<CommandReply> {
    const key = firstLine(request.dbg);
    const point = this.host.cancelTriggers.find(([d]) => d === key)?.[1];
    if (point === undefined) return this.executeOnVm(command.vmId, command, request.dbg);
    const armed = { ...command, operation: { ...command.operation, cancelAtPoint: point } };
    const reply = await this.executeOnVm(command.vmId, armed, request.dbg);
    if (reply.ok) await this.decideForHost(request.dbg, { type: 'UseCancelTrigger', dbg: key, taskId: String(reply.value) });
    return reply;
  }

  /** Decides an input on its VM's actor, reloading the actor when its state turns out stale. */
  private async executeOnVm(vmId: string, input: VmInput, dbg: string): Promise<CommandReply> {
    this.inflight.set(vmId, (this.inflight.get(vmId) ?? 0) + 1);
    try {
      for (let attempt = 1; ; attempt++) {
        const actor = await this.actorFor(vmId);
        try {
          const reply = await actor.handle(input, dbg);
          // Refused as another host's: make sure that is what the log says, not a stale state.
          if (!reply.ok && attempt < 3 && ownerNamedBy(reply.error) !== undefined && (await this.isStale(actor))) {
            await this.refresh(vmId, actor);
            continue;
          }
          return reply;
        } catch (e) {
          if (actor.stalled && attempt < 3) {
            this.evict(vmId, actor);
            continue;
          }
          this.logger(`agent ${this.hostId}: ${input.type} on vm ${vmId} failed: ${(e as Error).message}`);
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

  /**
   * An actor behind the log (another host wrote the VM's stream: a migration passed it here or
   * away) is started again from its state and the messages it missed, not from the whole stream.
   * A message it cannot read, or a read that fails, makes it read the VM again from the start.
   */
  private async refresh(vmId: string, actor: VmActor): Promise<VmActor> {
    let vm: VmAggregate | undefined = actor.state;
    try {
      for await (const m of this.opts.stores.log.readStream(Streams.vm(vmId), vm.version)) {
        const folded = foldVmMessage(vm, m);
        if (folded.damage) {
          vm = undefined;
          break;
        }
        vm = folded.vm;
      }
    } catch {
      vm = undefined;
    }
    this.evict(vmId, actor);
    return this.actorFor(vmId, vm);
  }

  /** Whether the log has messages of the VM's stream that the actor has not folded. */
  private async isStale(actor: VmActor): Promise<boolean> {
    return (await this.opts.stores.log.lastSeqOf(Streams.vm(actor.id))) !== actor.state.version;
  }

  /**
   * DEBUG.trigger (§8.3): the engine checks the command, its arguments, the VM and its domain;
   * the backend carries out the guest's part; set-cancel-trigger is a fact of this host. The
   * domain events a trigger causes are decided before the reply, so the caller reads them.
   */
  private async debugTrigger(dbg: string, cmd: string, args: readonly string[]): Promise<CommandReply> {
    if (!this.backend.capabilities.debugTriggers || !this.backend.debugTrigger) return { ok: false, seq: 0, error: Errors.unimplemented(cmd).value };
    const target = debugTriggerTarget(cmd, args);
    if (target instanceof XenopsError) return { ok: false, seq: 0, error: target.value };
    if (target.kind === 'cancel-trigger') return this.decideForHost(dbg, { type: 'SetCancelTrigger', dbg: target.dbg, point: target.point });
    const { vmId } = target;
    this.inflight.set(vmId, (this.inflight.get(vmId) ?? 0) + 1);
    try {
      let actor = await this.actorFor(vmId);
      const owner = ownerOf(actor.state);
      if (owner !== undefined && owner !== this.hostId && (await this.isStale(actor))) actor = await this.refresh(vmId, actor);
      const vm = actor.state;
      const refused = checkDebugTriggerVm(vm, target.needsDomain);
      if (refused) return { ok: false, seq: vm.version, error: refused.value };
      const owned = ownerOf(vm);
      if (owned !== undefined && owned !== this.hostId) return { ok: false, seq: vm.version, error: notOwnerError(vmId, owned, this.hostId).value };
      const cause = { dbg, handled: [] as Array<Promise<number>> };
      this.triggers.set(vmId, cause);
      try {
        await this.backend.debugTrigger(cmd, args, vm);
      } finally {
        this.triggers.delete(vmId);
      }
      const seqs = await Promise.all(cause.handled);
      return { ok: true, seq: Math.max(vm.version, ...seqs), value: null };
    } catch (e) {
      return { ok: false, seq: 0, error: toErrorValue(e) };
    } finally {
      const n = (this.inflight.get(vmId) ?? 1) - 1;
      if (n > 0) this.inflight.set(vmId, n);
      else {
        this.inflight.delete(vmId);
        this.scheduleSleep(vmId);
      }
    }
  }

  /** A domain event the backend reported: decided on the VM's actor (§7.5); resolves with the seq it was written at. */
  private onDomainEvent(e: DomainEvent): void {
    const cause = this.triggers.get(e.vmId);
    const handled = this.decideDomainEvent(e, cause?.dbg ?? 'internal:domain_event');
    cause?.handled.push(handled);
  }

  private async decideDomainEvent(e: DomainEvent, dbg: string): Promise<number> {
    if (this.closing) return 0;
    let input: VmInput;
    if (e.kind === 'guest') input = { type: 'GuestEvent', action: e.action };
    else {
      const domain = (await this.actorFor(e.vmId)).state.domain;
      if (!domain) return 0;
      input = { type: 'Reconcile', observed: { vmId: e.vmId, domid: domain.domid, paused: e.kind === 'paused' } };
    }
    const reply = await this.executeOnVm(e.vmId, input, dbg);
    if (!reply.ok) {
      this.logger(`agent ${this.hostId}: vm ${e.vmId}: domain event ${e.kind === 'guest' ? e.action : e.kind} not acted on: ${JSON.stringify(reply.error)}`);
      return 0;
    }
    return reply.seq;
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
        if (isLive(actor.state) && !this.lateDamage.has(vmId)) this.dormant.set(vmId, actor.state);
      },
      () => undefined,
    );
  }

  private actorFor(vmId: string, restored?: VmAggregate): Promise<VmActor> {
    let actor = this.actors.get(vmId);
    if (!actor) {
      // Damage found behind the start snapshot: what is known of this VM may be wrong; read it again.
      const known = this.lateDamage.has(vmId) ? undefined : (restored ?? this.dormant.get(vmId));
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

  /** Folds the VM's stream (unless its state is known), starts its actor, and fails a task this host left executing. */
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
      this.lateDamage.delete(vmId);
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
      crashLoopWindowS: this.opts.crashLoopWindowS,
      onStalled: (stalled) => {
        this.stalledOnWrite.add(vmId);
        this.revive(vmId, stalled);
      },
      // A task that ended with no command in flight.
      onIdle: () => this.scheduleSleep(vmId),
      onHandedOver: (taskId, destination, state) => void this.wakeDestination(vmId, taskId, destination, state),
    });
    // A quarantined VM's stream is never written again: its interrupted task stays as the log left it.
    const interrupted = vm.quarantine ? undefined : vm.running;
    // A migration passed to this host and not taken over yet is not interrupted: the actor goes on with it.
    if (interrupted && interrupted.host === this.hostId && !interrupted.migration?.handedOver) {
      const cause = this.stalledOnWrite.has(vmId) ? 'store-outage' : 'restart';
      const reply = await actor.handle({ type: 'Recover', cause }, interrupted.dbg);
      if (!reply.ok) throw new XenopsError(reply.error);
      const why = cause === 'store-outage' ? 'the event log could not be written' : 'interrupted by service restart';
      this.logger(`agent ${this.hostId}: vm ${vmId}: task ${interrupted.taskId} failed: ${why}`);
    }
    this.stalledOnWrite.delete(vmId);
    return actor;
  }

  /**
   * A migration's switch-over passed the VM to `destination` (§7.8): its agent is told to take
   * the task over. If it cannot be told now, it still finds the task when its own wait for the
   * switch-over ends (`awaitSwitchOver`) or when it starts again.
   */
  private async wakeDestination(vmId: string, taskId: string, destination: string, state: VmAggregate): Promise<void> {
    this.logger(`agent ${this.hostId}: vm ${vmId}: migration task ${taskId} switched over to host ${destination}`);
    faultPoint('migration-switched-over');
    const request = encodeCommand({ dbg: `internal:migration ${taskId}`, command: { type: 'TakeOverMigration', vmId, taskId, state: encodeHandedState(state) } });
    for (let attempt = 1; attempt <= 5 && !this.closing; attempt++) {
      try {
        const reply = decodeReply(await this.opts.stores.bus.request(destination, request, { timeoutMs: 5_000 }));
        if (reply.ok) return;
        this.logger(`agent ${this.hostId}: vm ${vmId}: host ${destination} refused to take over migration ${taskId}: ${JSON.stringify(reply.error)}`);
        return;
      } catch (e) {
        if (attempt === 5) this.logger(`agent ${this.hostId}: vm ${vmId}: cannot reach host ${destination} about migration ${taskId}: ${(e as Error).message}`);
        else await sleep(200 * attempt);
      }
    }
  }

  /** A migration's destination gets ready (its backend's part), then waits for the switch-over. */
  private async prepareMigration(vmId: string, transferId: string, payload: string): Promise<unknown> {
    if (!this.backend.prepareMigration) throw Errors.internal(`host ${this.hostId} runs the ${this.backend.name} backend: it cannot take a QEMU domain's migration`);
    const answer = await this.backend.prepareMigration({ vmId, transferId }, JSON.parse(payload) as unknown);
    this.logger(`agent ${this.hostId}: vm ${vmId}: ready to receive migration ${transferId}`);
    this.preparedMigrations.add(transferId);
    void this.awaitSwitchOver(vmId, transferId);
    return answer ?? null;
  }

  /**
   * Takes over a migration the log passed to this host: the VM's actor is read again from the
   * log, and its machine runs the destination's atoms (a task not passed here is left alone).
   */
  private async takeOverMigration(vmId: string, taskId: string, handedState?: string): Promise<boolean> {
    let actor: VmActor | undefined;
    // The source's state at the switch-over, when the log's stream ends where it does: no read of the stream.
    const handed = handedState === undefined ? undefined : decodeHandedState(handedState, vmId, taskId, this.hostId);
    if (handed && (await this.opts.stores.log.lastSeqOf(Streams.vm(vmId))) === handed.version) {
      const current = await this.actors.get(vmId)?.catch(() => undefined);
      if (current && current.state.version !== handed.version) this.evict(vmId, current);
      else this.dormant.delete(vmId);
      actor = await this.actorFor(vmId, handed);
    }
    actor ??= await this.actorFor(vmId);
    if (await this.isStale(actor)) actor = await this.refresh(vmId, actor);
    const running = actor.state.running;
    if (running?.taskId === taskId && running.host === this.hostId) {
      this.preparedMigrations.delete(taskId);
      return true;
    }
    // The migration's task ended without passing here: what was received or made ready for it goes.
    if (running?.taskId !== taskId) {
      this.migrations.drop(taskId);
      if (this.preparedMigrations.delete(taskId)) {
        this.logger(`agent ${this.hostId}: vm ${vmId}: migration ${taskId} ended without passing here: abandoning what was prepared for it`);
        await this.backend.abandonMigration?.(taskId).catch((e: unknown) => this.logger(`agent ${this.hostId}: vm ${vmId}: abandoning migration ${taskId}: ${(e as Error).message}`));
      }
    }
    return false;
  }

  /**
   * The whole state of a migration arrived: the source's switch-over follows. Should the source
   * die before it can say so, this agent looks at the VM's stream until the task is passed here
   * or ends elsewhere.
   */
  private async awaitSwitchOver(vmId: string, taskId: string): Promise<void> {
    const waiting = () => this.migrations.holds(taskId) || this.preparedMigrations.has(taskId);
    // A prepared destination waits as long as the transfer may take (an atom's limit).
    const deadline = this.now() + (this.opts.atomTimeoutMs ?? 1_200_000);
    while (!this.closing && waiting() && this.now() < deadline) {
      await sleep(1_000);
      if (!waiting()) return;
      try {
        const last = await this.opts.stores.log.lastSeqOf(Streams.vm(vmId));
        const known = (await this.actors.get(vmId)?.catch(() => undefined))?.state.version ?? this.dormant.get(vmId)?.version;
        if (last !== known && (await this.takeOverMigration(vmId, taskId))) return;
      } catch (e) {
        this.logger(`agent ${this.hostId}: vm ${vmId}: waiting for the switch-over of migration ${taskId}: ${(e as Error).message}`);
      }
    }
  }

  /** A message this agent cannot read: said once per seq (the gateway's /healthz lists them all). */
  private reportDamage(d: DamagedMessage): void {
    if (this.reportedDamage.has(d.seq)) return;
    this.reportedDamage.add(d.seq);
    const quarantine = d.vm === undefined ? '' : `; VM ${d.vm} is quarantined (its commands are refused)`;
    this.logger(`agent ${this.hostId}: the log is damaged at seq ${d.seq} (${d.stream}): ${d.error}${quarantine}`);
  }

  /** Decides a host-level input and appends its facts to `host/<id>` (this agent is its only writer). */
  private async decideForHost(dbg: string, input: HostInput): Promise<CommandReply> {
    const events = decideHost(this.host, input, this.hostId);
    if (events.length === 0) return { ok: true, seq: 0, value: null };
    const audit = { dbg, timeMs: this.now(), host: this.hostId, actor: `host/${this.hostId}` };
    const seq = await this.opts.stores.log.append({ stream: Streams.host(this.hostId), data: encodeBatch(events.map((body) => ({ audit, body }))) });
    for (const body of events) this.host = evolveHost(this.host, { seq, audit, body });
    if (input.type === 'SetPoolSize') this.setPoolSize(input.size);
    return { ok: true, seq, value: null };
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
      cancel_triggers: Object.fromEntries(this.host.cancelTriggers),
      actors: { awake: this.actors.size, asleep: this.dormant.size },
      backend: this.backend.name,
    };
  }

  /**
   * Reads what this host knows: its own snapshot and the log after it; without one (a first
   * start, or a snapshot retention outran), the fold snapshot of the read models, or the whole log.
   */
  private async recover(): Promise<AgentState> {
    const { log, snapshots } = this.opts.stores;
    const [own, first, head] = await Promise.all([
      loadAgentSnapshot(snapshots, this.hostId).catch((e: unknown) => {
        this.logger(`agent ${this.hostId}: cannot load its snapshot (${(e as Error).message}); reading the log`);
        return undefined;
      }),
      log.firstSeq(),
      log.head(),
    ]);
    let start: FoldStart;
    let origin: string;
    const newer = own && (await this.readModelFoldAfter(own, head));
    if (own && newer) {
      // Its own snapshot stays the one stored: the next one is written from what recovery read.
      this.storedSnapshotSeq = own.seq;
      this.storedSnapshotAt = this.now();
      this.storedSnapshotVms = own.vms.size;
      start = newer.start;
      origin = newer.origin;
    } else if (own && own.seq <= head && first <= own.seq + 1) {
      this.storedSnapshotSeq = own.seq;
      this.storedSnapshotAt = this.now();
      this.storedSnapshotVms = own.vms.size;
      start = { state: own, partial: true };
      origin = `its snapshot at seq ${own.seq} and `;
    } else {
      ({ start, origin } = await this.fullStart(first, head));
    }
    const { state, report } = await catchUp(log, snapshots, this.hostId, start, head);
    for (const d of report.damage) this.reportDamage(d);
    this.recovered = state;
    this.host = state.host;
    if (state.host.poolSize !== undefined) this.setPoolSize(state.host.poolSize);
    const quarantinedVms = [...state.vms.values()].filter((vm) => vm.quarantine).length;
    const refused = quarantinedVms ? `; ${quarantinedVms} quarantined by a damaged log (see xenops verify)` : '';
    const working = [...state.vms.values()].filter((vm) => hasWorkHere(vm, this.hostId)).length;
    this.logger(`agent ${this.hostId}: recovered ${state.vms.size} VM(s) from ${origin}${report.messages} log message(s); ${working} with unfinished work${refused}`);
    // Messages its own snapshot covers were readable when it was taken; a file damaged since is
    // found by a scan in the background, as the read model does. Started from the read model's
    // fold, it scans the part that read model did not read itself (what its snapshot covered):
    // the read model's own scan of it may still be running, and its findings stay there.
    const covered = newer ? newer.unread : start.partial ? start.state.seq : undefined;
    if (covered !== undefined && covered >= first) void this.scanCovered(first - 1, covered);
    return state;
  }

  /**
   * The fold of the read model in this process (`foldOfReadModel`) when it is ahead of the agent's
   * own snapshot `own`: it has just folded the log to its head, so starting from it reads
   * nothing twice, where the own snapshot may be any number of messages behind. The quarantines
   * the own snapshot holds (damage its integrity scans found) and its last domid are kept; `unread`
   * is where the scan for damage the read model did not read itself ends.
   */
  private async readModelFoldAfter(own: AgentState, head: number): Promise<{ start: FoldStart; origin: string; unread: number } | undefined> {
    const load = this.opts.foldOfReadModel;
    if (!load) return undefined;
    const taken = await load().catch((e: unknown) => {
      this.logger(`agent ${this.hostId}: cannot take the read model's fold (${(e as Error).message}); reading the log from its own snapshot`);
      return undefined;
    });
    const fold = taken?.fold;
    if (!taken || !fold || fold.seq <= own.seq || fold.seq > head) return undefined;
    for (const d of fold.damage ?? []) this.reportDamage(d);
    const start = fullStart(fold, this.hostId);
    // A quarantined VM stays as it was folded before its damage: the own snapshot's record is that.
    for (const vm of own.vms.values()) if (vm.quarantine && !start.state.vms.get(vm.id)?.quarantine) start.state.vms.set(vm.id, vm);
    // The read model skips the messages of a quarantined VM, domids included; the agent's own count never goes back.
    start.state.lastDomid = Math.max(start.state.lastDomid, own.lastDomid);
    return { start, origin: `the read model's fold at seq ${fold.seq} and `, unread: Math.min(taken.readAfter, fold.seq) };
  }

  /** Where a fold starts without a usable snapshot of the agent's own: the read models' fold snapshot, or the whole log. */
  private async fullStart(first: number, head: number): Promise<{ start: FoldStart; origin: string }> {
    const fold = await (this.opts.loadFoldSnapshot ?? (() => loadFoldSnapshot(this.opts.stores.snapshots)))().catch((e: unknown) => {
      this.logger(`agent ${this.hostId}: cannot load the fold snapshot (${(e as Error).message}); reading the whole log`);
      return undefined;
    });
    if (first > (fold?.seq ?? 0) + 1) {
      throw new StoreUnavailableError(`the log starts at seq ${first} (retention) but the newest snapshot is at seq ${fold?.seq ?? 0}`);
    }
    const usable = fold && fold.seq <= head ? fold : undefined;
    // The damage the fold met quarantines VMs of this agent too: it says so in its own words, as
    // when it reads the damaged messages itself.
    for (const d of usable?.damage ?? []) this.reportDamage(d);
    return { start: fullStart(usable, this.hostId), origin: usable ? `the snapshot at seq ${usable.seq} and ` : '' };
  }

  /**
   * Starts the backend with the domains the log says this host has, then reconciles: a domain
   * the backend does not have (or has otherwise) is decided on its VM's actor.
   */
  private async startBackend(state: AgentState): Promise<void> {
    const knownDomains: KnownDomain[] = [];
    for (const vm of state.vms.values()) {
      const d = vm.domain;
      if (!d || d.host !== this.hostId || vm.quarantine) continue;
      const pluggedVbds = [...vm.devices.vbd].filter(([, e]) => e.plugged).map(([dev]) => dev);
      knownDomains.push({ vmId: vm.id, domid: d.domid, paused: d.paused, pluggedVbds });
    }
    await this.backend.start({
      hostId: this.hostId,
      ...(this.opts.dataDir !== undefined ? { dataDir: this.opts.dataDir } : {}),
      logger: this.logger,
      now: this.now,
      lastDomid: state.lastDomid,
      knownDomains,
      migration: this.migrations,
    });
    this.unsubscribeDomainEvents = this.backend.onDomainEvent((e) => this.onDomainEvent(e));
    const observed = new Map((await this.backend.domains()).map((d) => [d.vmId, d]));
    for (const known of knownDomains) {
      const o = observed.get(known.vmId);
      observed.delete(known.vmId);
      if (o && o.domid === known.domid && o.paused === known.paused) continue;
      const vm = state.vms.get(known.vmId)!;
      const reply = await this.executeOnVmRestored(vm, { type: 'Reconcile', ...(o ? { observed: o } : {}) });
      this.logger(`agent ${this.hostId}: vm ${known.vmId}: domain ${known.domid} ${o ? 'differs from the log' : 'is gone'}; ${reply.ok ? 'recorded' : `not recorded: ${JSON.stringify(reply.error)}`}`);
    }
    for (const o of observed.values()) this.logger(`agent ${this.hostId}: the ${this.backend.name} backend has domain ${o.domid} of VM ${o.vmId}, which the log does not give this host`);
  }

  /** Starts the actors of the VMs with unfinished work on this host (their queued tasks run, an interrupted one fails). */
  private async resume(state: AgentState): Promise<void> {
    for (const vm of state.vms.values()) {
      // Nothing runs on a quarantined VM: its queued work stays queued, every command is refused.
      if (vm.quarantine || !hasWorkHere(vm, this.hostId)) continue;
      await this.actorFor(vm.id, vm);
    }
  }

  private executeOnVmRestored(vm: VmAggregate, input: VmInput): Promise<CommandReply> {
    void this.actorFor(vm.id, vm);
    return this.executeOnVm(vm.id, input, 'internal:reconcile');
  }

  /** The integrity scan of what the start snapshot covers: damaged VMs are read again from the log. */
  private async scanCovered(afterSeq: number, toSeq: number): Promise<void> {
    try {
      for await (const d of findDamage(this.opts.stores.log, afterSeq, toSeq)) {
        if (this.closing) return;
        this.reportDamage(d);
        if (d.vm === undefined) continue;
        this.lateDamage.set(d.vm, d);
        this.unsnapshottedDamage.set(d.vm, d);
        this.dormant.delete(d.vm);
        const actor = await this.actors.get(d.vm)?.catch(() => undefined);
        if (actor?.idle) this.evict(d.vm, actor);
      }
    } catch (e) {
      if (!this.closing) this.logger(`agent ${this.hostId}: the integrity scan of seqs ${afterSeq + 1}..${toSeq} stopped: ${(e as Error).message}`);
    }
  }

  /**
   * The agent's snapshot is due every `snapshotEvery` messages of the log, and at least every
   * `SNAPSHOT_MAX_AGE_MS` when anything was written since (so that retention, which keeps days,
   * never cuts the log past it); the first one as soon as the agent has started.
   */
  private snapshotIfDue(): void {
    if (this.closing || this.snapshotting) return;
    this.snapshotting = (async () => {
      const head = await this.opts.stores.log.head();
      const behind = head - this.storedSnapshotSeq;
      const old = this.now() - this.storedSnapshotAt >= SNAPSHOT_MAX_AGE_MS;
      const every = Math.max(this.opts.snapshotEvery ?? 5000, this.storedSnapshotVms);
      if (this.recovered || behind >= every || (behind > 0 && old) || this.unsnapshottedDamage.size > 0) await this.writeSnapshot();
    })()
      .catch((e: unknown) => this.logger(`agent ${this.hostId}: cannot write its snapshot: ${(e as Error).message}`))
      .finally(() => (this.snapshotting = undefined));
  }

  /**
   * Folds the log since the last snapshot (the stored one, or what recovery read) into a new one,
   * marks the VMs the integrity scan found damaged, and stores it.
   */
  private async writeSnapshot(): Promise<void> {
    const { log, snapshots } = this.opts.stores;
    try {
      const [head, first] = await Promise.all([log.head(), log.firstSeq()]);
      if (head === this.storedSnapshotSeq && this.unsnapshottedDamage.size === 0) {
        this.recovered = undefined; // the stored snapshot holds it all
        return;
      }
      let base: FoldStart | undefined;
      const stored = this.recovered ?? (this.storedSnapshotSeq >= 0 ? await loadAgentSnapshot(snapshots, this.hostId) : undefined);
      // Retention may have cut the log past it: then start again from what covers the cut.
      if (stored && first <= stored.seq + 1) base = { state: stored, partial: true };
      base ??= (await this.fullStart(first, head)).start;
      const { state, report } = await catchUp(log, snapshots, this.hostId, base, head);
      for (const d of report.damage) this.reportDamage(d);
      const damage = [...this.unsnapshottedDamage];
      for (const [vmId, d] of damage) {
        const vm = state.vms.get(vmId);
        if (vm && !vm.quarantine) state.vms.set(vmId, quarantined(vm, d));
      }
      await saveAgentSnapshot(snapshots, this.hostId, state);
      this.storedSnapshotSeq = state.seq;
      this.storedSnapshotVms = state.vms.size;
      this.storedSnapshotAt = this.now();
      this.recovered = undefined;
      for (const [vmId, d] of damage) if (this.unsnapshottedDamage.get(vmId) === d) this.unsnapshottedDamage.delete(vmId);
    } catch (e) {
      this.logger(`agent ${this.hostId}: cannot write its snapshot: ${(e as Error).message}`);
    }
  }
}

/** The longest an agent goes without a snapshot while the log moves (see `snapshotIfDue`). */
const SNAPSHOT_MAX_AGE_MS = 10 * 60_000;

/** The VM a command is about. */
function vmOf(command: Exclude<Command, HostCommand>): string {
  switch (command.type) {
    case 'AddVm':
      return command.config.id;
    case 'AddDevice':
      return command.device.config.id[0];
    default:
      return command.vmId;
  }
}

/** Queued or running work of this host: its actor must run (or fail) it. */
function hasWorkHere(vm: VmAggregate, hostId: string): boolean {
  return (vm.running !== undefined || vm.queue.length > 0) && ownerOf(vm) === hostId;
}
