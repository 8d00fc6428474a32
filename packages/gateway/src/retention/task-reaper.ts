import { encodeBatch, Errors, ownerOf, Streams, type EventBody, type EventLog, type LeaseStore } from '@xenops/core';
import { evacuationLease } from '../hosts/evacuation.js';
import { printable } from '../hosts/placement.js';
import type { Projection } from '../read-model/projection.js';
import type { EngineClient } from '../service/engine-client.js';
import { PeriodicJob } from './periodic-job.js';

export interface TaskReaperOptions {
  /** Finished tasks older than this are destroyed (§7.1; default 24 h). */
  readonly retentionMs?: number;
  readonly everyMs?: number;
  /** This gateway's host: whose agent destroys the tasks of free VMs. */
  readonly hostId: string;
  readonly logger?: (line: string) => void;
  /** Passes run only while this says so (the cluster lease, issue 14): default always. */
  readonly mayRun?: () => boolean;
  /** Where the gateways' own tasks (HOST.evacuate's) are destroyed: their stream is written by gateways. */
  readonly log?: EventLog;
  /** The leases of running evacuations: one pending with its lease lapsed has lost its runner, and is failed. */
  readonly leases?: LeaseStore;
}

/** An evacuation younger than this has not had the time to take its lease. */
const EVACUATION_GRACE_MS = 60_000;

/**
 * §7.1: finished tasks nobody destroyed are destroyed after a retention period, so seed clients,
 * which cannot destroy tasks, do not leak. A task's age counts from its end. The destruction is a
 * fact of the task's VM: its owner records it (`DestroyTask`, one command per VM), as for
 * Task.destroy. A VM whose owner has no agent keeps its tasks until the next round.
 */
export class TaskReaper {
  private readonly job: PeriodicJob;

  constructor(
    private readonly engine: EngineClient,
    private readonly projection: Projection,
    private readonly opts: TaskReaperOptions,
  ) {
    this.job = new PeriodicJob('task retention', () => this.run(), opts.everyMs ?? 600_000, opts.logger, opts.mayRun);
  }

  start(): void {
    this.job.start();
  }


  stop(): Promise<void> {
    return this.job.stop();
  }

  /** Destroys every task that ended more than the retention period before `now`; returns how many. */
  async run(now = Date.now()): Promise<number> {
    const cutoff = now - (this.opts.retentionMs ?? 86_400_000);
    const expired = new Map<string, string[]>();
    const evacuations: string[] = [];
    const orphans: EventBody[] = [];
    for (const t of this.projection.tasks.values()) {
      // §7.1: every task ends. An evacuation whose gateway died (its lease lapsed) ends here.
      if (t.status === 'pending' && t.operation.kind === 'HOST.evacuate' && this.opts.leases && t.ctimeMs < now - EVACUATION_GRACE_MS) {
        if ((await this.opts.leases.holder(evacuationLease(t.id)).catch(() => 'unknown')) === undefined) {
          const error = Errors.internal(`evacuation of ${printable(t.operation.host)} stopped: the gateway that ran it is gone (its migrations went on: see Task.list)`).value;
          orphans.push({ type: 'TaskFailed', taskId: t.id, error, cancelPointsSeen: 0, duration: (now - (t.startedMs ?? t.ctimeMs)) / 1000 });
        }
      }
      if (t.status === 'pending' || (t.startedMs ?? t.ctimeMs) + (t.duration ?? 0) * 1000 >= cutoff) continue;
      if (t.operation.kind === 'HOST.evacuate') {
        evacuations.push(t.id);
        continue;
      }
      // A quarantined VM's stream is never written again: its tasks stay as the log left them.
      if (this.projection.vms.get(t.vmId)?.quarantine) continue;
      const ids = expired.get(t.vmId) ?? [];
      ids.push(t.id);
      expired.set(t.vmId, ids);
    }
    let destroyed = 0;
    const failures: string[] = [];
    for (const [vmId, taskIds] of expired) {
      const owner = ownerOf(this.projection.vms.get(vmId));
      try {
        await this.engine.send(owner ?? this.opts.hostId, 'internal:task_retention', { type: 'DestroyTask', vmId, taskIds }, { orAnyAgent: owner === undefined });
        destroyed += taskIds.length;
      } catch (e) {
        failures.push(`VM ${vmId}: ${(e as Error).message}`);
      }
    }
    if (orphans.length > 0 && this.opts.log) {
      const audit = { dbg: 'internal:task_retention', timeMs: now, host: this.opts.hostId, actor: 'gateway' };
      await this.opts.log.append({ stream: Streams.evacuations(), data: encodeBatch(orphans.map((body) => ({ audit, body }))) }).then(
        () => this.opts.logger?.(`task retention: failed ${orphans.length} evacuation task(s) whose gateway is gone`),
        (e: unknown) => failures.push(`evacuation tasks: ${(e as Error).message}`),
      );
    }
    if (evacuations.length > 0 && this.opts.log) {
      const audit = { dbg: 'internal:task_retention', timeMs: now, host: this.opts.hostId, actor: 'gateway' };
      try {
        await this.opts.log.append({ stream: Streams.evacuations(), data: encodeBatch(evacuations.map((taskId) => ({ audit, body: { type: 'TaskDestroyed', taskId } }))) });
        destroyed += evacuations.length;
      } catch (e) {
        failures.push(`evacuation tasks: ${(e as Error).message}`);
      }
    }
    if (destroyed) this.opts.logger?.(`task retention: destroyed ${destroyed} finished task(s) older than the retention period`);
    if (failures.length) this.opts.logger?.(`task retention: kept the tasks of ${failures.length} VM(s) for the next round (${failures.slice(0, 3).join('; ')})`);
    return destroyed;
  }
}
