import { saveFoldSnapshot, type EventLog, type SnapshotStore } from '@xenops/core';
import type { Projection } from '../read-model/projection.js';
import { PeriodicJob } from './periodic-job.js';

/** A fold snapshot taken by the janitor, and when: the points the log may later be cut at. */
interface Mark {
  readonly seq: number;
  readonly timeMs: number;
}

const MARKS_KEY = 'retention-marks';
const MAX_MARKS = 10_000;

export interface RetentionOptions {
  /** Events older than this many days may be deleted (always after a snapshot covering them). */
  readonly days: number;
  /** How often the janitor runs (default one hour). */
  readonly everyMs?: number;
  readonly logger?: (line: string) => void;
  /** Passes run only while this says so (the cluster lease, issue 14): default always. */
  readonly mayRun?: () => boolean;
}

/**
 * Retention (issue 5): the log keeps everything by default. With a retention period, the janitor
 * periodically snapshots the fold and remembers when; a message is deleted only once it is older
 * than the period AND a snapshot covers it, so every reader (restart, verify, time travel within
 * the retained history, SSE replay, actor restores) starts from that snapshot instead.
 */
export class RetentionJanitor {
  private readonly job: PeriodicJob;

  constructor(
    private readonly log: EventLog,
    private readonly snapshots: SnapshotStore,
    private readonly projection: Projection,
    private readonly opts: RetentionOptions,
  ) {
    this.job = new PeriodicJob('retention', () => this.run(), opts.everyMs ?? 3_600_000, opts.logger, opts.mayRun);
  }

  /** Runs a pass now, then every `everyMs`. */
  start(): void {
    this.job.start(true);
  }

  stop(): Promise<void> {
    return this.job.stop();
  }

  /** A pass now (when allowed): e.g. as this gateway takes the lease. */
  runSoon(): void {
    this.job.tick();
  }

  /** One pass: snapshot the fold now, then cut the log at the newest mark older than the period. */
  async run(now = Date.now()): Promise<void> {
    const snapshot = this.projection.snapshot();
    await saveFoldSnapshot(this.snapshots, snapshot);
    const marks = [...(await this.loadMarks()), { seq: snapshot.seq, timeMs: now }].slice(-MAX_MARKS);
    await this.snapshots.put(MARKS_KEY, { seq: snapshot.seq, data: Buffer.from(JSON.stringify(marks)) });
    const cutoff = now - this.opts.days * 86_400_000;
    const cut = marks.filter((m) => m.timeMs <= cutoff).at(-1);
    if (!cut) return;
    const first = await this.log.firstSeq();
    if (cut.seq <= first) return;
    await this.log.truncateBefore(cut.seq);
    this.opts.logger?.(`retention: deleted the messages before seq ${cut.seq} (older than ${this.opts.days} day(s); snapshot at seq ${snapshot.seq} covers them)`);
  }

  private async loadMarks(): Promise<Mark[]> {
    const stored = await this.snapshots.get(MARKS_KEY);
    if (!stored) return [];
    try {
      const marks = JSON.parse(Buffer.from(stored.data).toString('utf8')) as Mark[];
      return Array.isArray(marks) ? marks.filter((m) => Number.isSafeInteger(m.seq) && Number.isFinite(m.timeMs)) : [];
    } catch {
      return [];
    }
  }
}
