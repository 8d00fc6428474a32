import { encodeBatch, Streams, type EventLog } from '@xenops/core';
import type { Projection } from '../read-model/projection.js';
import { PeriodicJob } from './periodic-job.js';

export interface TaskReaperOptions {
  /** Finished tasks older than this are destroyed (§7.1; default 24 h). */
  readonly retentionMs?: number;
  readonly everyMs?: number;
  readonly hostId: string;
  readonly logger?: (line: string) => void;
}

/**
 * §7.1: finished tasks nobody destroyed are destroyed after a retention period, so seed clients,
 * which cannot destroy tasks, do not leak. A task's age counts from its end.
 */
export class TaskReaper {
  private readonly job: PeriodicJob;

  constructor(
    private readonly log: EventLog,
    private readonly projection: Projection,
    private readonly opts: TaskReaperOptions,
  ) {
    this.job = new PeriodicJob('task retention', () => this.run(), opts.everyMs ?? 600_000, opts.logger);
  }

  start(): void {
    this.job.start();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }

  /** Destroys every task that ended more than the retention period before `now`. */
  async run(now = Date.now()): Promise<number> {
    const cutoff = now - (this.opts.retentionMs ?? 86_400_000);
    const expired = [...this.projection.tasks.values()].filter(
      (t) => t.status !== 'pending' && (t.startedMs ?? t.ctimeMs) + (t.duration ?? 0) * 1000 < cutoff,
    );
    for (const t of expired) {
      await this.log.append({
        stream: Streams.task(t.id),
        data: encodeBatch([
          {
            audit: { dbg: 'internal:task_retention', timeMs: now, host: this.opts.hostId, actor: 'gateway' },
            body: { type: 'TaskDestroyed', taskId: t.id },
          },
        ]),
      });
    }
    if (expired.length) this.opts.logger?.(`task retention: destroyed ${expired.length} finished task(s) older than the retention period`);
    return expired.length;
  }
}
