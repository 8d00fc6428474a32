import { ownerOf } from '@xenops/core';
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
}

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
    for (const t of this.projection.tasks.values()) {
      if (t.status === 'pending' || (t.startedMs ?? t.ctimeMs) + (t.duration ?? 0) * 1000 >= cutoff) continue;
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
    if (destroyed) this.opts.logger?.(`task retention: destroyed ${destroyed} finished task(s) older than the retention period`);
    if (failures.length) this.opts.logger?.(`task retention: kept the tasks of ${failures.length} VM(s) for the next round (${failures.slice(0, 3).join('; ')})`);
    return destroyed;
  }
}
