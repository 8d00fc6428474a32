/** `GET /metrics` (API.md §2.8). */
import type { ServerResponse } from 'node:http';
import { powerStateOf, quarantinesOf, type DamagedMessage, type EventLog, type FoldStep } from '@xenops/core';
import type { CallRecord } from '../dispatch/dispatcher.js';
import type { LimitUsage } from '../limits/limits.js';
import type { Projection } from '../read-model/projection.js';
import { Counter, Histogram, PROMETHEUS_CONTENT_TYPE, renderCounter, renderGauge, type Labels } from './exposition.js';

export interface MetricsSources {
  readonly projection: Projection;
  readonly log: EventLog;
  /** Blocked `UPDATES.get` calls. */
  readonly updatesWaiters: () => number;
  /** Connected `GET /events` clients. */
  readonly sseClients: () => number;
  /** Each bounded resource (README "Limits"). */
  readonly limits: () => readonly LimitUsage[];
  /** Metric families the process keeps elsewhere (e.g. the log's append latency, measured where every writer appends). */
  readonly families?: readonly MetricFamily[];
}

/** Anything that renders itself in the text exposition format. */
export interface MetricFamily {
  render(): string;
}

/** Task durations run from milliseconds (simulator) to the 1200 s atom limit (§7.2). */
const TASK_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 1200];

/** Appends take a local fsync (~1 ms) or a JetStream round trip; seconds mean trouble. */
export const APPEND_LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The histogram of the log's append latency, by stream kind and outcome (fed by core's AppendObserver). */
export function appendLatencyHistogram(): Histogram & { observeAppend(stream: string, seconds: number, stored: boolean): void } {
  const h = new Histogram('xenops_log_append_duration_seconds', 'Time to append one event batch to the log, by stream kind (vm, task, host, updates) and outcome.', APPEND_LATENCY_BUCKETS);
  return Object.assign(h, {
    observeAppend(stream: string, seconds: number, stored: boolean): void {
      const slash = stream.indexOf('/');
      h.observe({ stream_kind: slash < 0 ? stream : stream.slice(0, slash), outcome: stored ? 'stored' : 'failed' }, seconds);
    },
  });
}

const TASK_STATES = ['pending', 'completed', 'failed'] as const;
const POWER_STATES = ['Running', 'Halted', 'Suspended', 'Paused'] as const;

export class GatewayMetrics {
  private readonly requests = new Counter('xenops_rpc_requests_total', 'RPC calls handled, by method, dialect and outcome.');
  private readonly durations = new Histogram('xenops_rpc_request_duration_seconds', 'Time to handle an RPC call, by method.');
  private readonly taskDurations = new Histogram(
    'xenops_task_duration_seconds',
    'Time from a task\u2019s start to its end, by operation, outcome (completed, failed, cancelled) and the host that ran it.',
    TASK_DURATION_BUCKETS,
  );

  private lastAppendMs: number | undefined;

  constructor(private readonly sources: MetricsSources) {
    // Attached after the read model's first fold: tasks that ended before this process started are history, not samples.
    sources.projection.addObserver((_seq, steps) => this.observeSteps(steps));
  }

  private observeSteps(steps: readonly FoldStep[]): void {
    for (const { event, taskAfter } of steps) {
      const body = event.body;
      if ((body.type !== 'TaskCompleted' && body.type !== 'TaskFailed') || !taskAfter) continue;
      const outcome = body.type === 'TaskCompleted' ? 'completed' : body.error === 'Cancelled' || (Array.isArray(body.error) && body.error[0] === 'Cancelled') ? 'cancelled' : 'failed';
      this.taskDurations.observe({ operation: taskAfter.operation.kind, outcome, host: taskAfter.host }, body.duration);
    }
  }

  /** The dispatcher's per-call report. */
  observeCall(record: CallRecord): void {
    this.requests.inc({ method: record.method, dialect: record.dialect, outcome: record.outcome });
    this.durations.observe({ method: record.method }, record.seconds);
  }

  async render(): Promise<string> {
    const { projection, log } = this.sources;
    const tasks = new Map<string, number>(TASK_STATES.map((s) => [s, 0]));
    for (const t of projection.tasks.values()) tasks.set(t.status, (tasks.get(t.status) ?? 0) + 1);
    const vms = new Map<string, number>(POWER_STATES.map((s) => [s, 0]));
    for (const vm of projection.vms.values()) {
      if (!vm.config) continue;
      const p = powerStateOf(vm);
      vms.set(p, (vms.get(p) ?? 0) + 1);
    }
    let head: number;
    // 1 when an append would succeed now (what /healthz calls ok), else 0.
    let storeUp = 1;
    try {
      head = await log.head();
      if (await log.writeProblem?.()) storeUp = 0;
    } catch {
      head = projection.seq;
      storeUp = 0;
    }
    // While the store is down, the last time it told us (an outage does not erase the past).
    if (storeUp) this.lastAppendMs = (await log.lastAppendTime?.().catch(() => undefined)) ?? this.lastAppendMs;
    const lastAppend = this.lastAppendMs;
    const gauge = (m: Map<string, number>, label: string): Array<[Labels, number]> => [...m].map(([k, v]) => [{ [label]: k }, v]);
    return [
      this.requests.render(),
      this.durations.render(),
      this.taskDurations.render(),
      ...(this.sources.families ?? []).map((f) => f.render()),
      renderGauge('xenops_tasks', 'Live tasks by state.', gauge(tasks, 'state')),
      renderGauge('xenops_vms', 'Registered VMs by power state.', gauge(vms, 'power_state')),
      renderGauge('xenops_log_sequence', 'Head seq of the event log.', [[{}, head]]),
      renderGauge('xenops_store_up', 'Whether the store can take a write now (1) or not (0: see /healthz for why).', [[{}, storeUp]]),
      ...(lastAppend !== undefined
        ? [renderGauge('xenops_store_last_append_timestamp_seconds', 'When the newest message of the log was stored (Unix time).', [[{}, lastAppend / 1000]])]
        : []),
      renderGauge('xenops_read_model_sequence', 'Seq folded into this gateway\u2019s read model.', [[{}, projection.seq]]),
      ...damageGauges(projection.damage),
      renderGauge('xenops_host_queued_tasks', 'Tasks queued or running on the VMs each host owns.', queuedByHost(projection)),
      renderGauge('xenops_updates_waiters', 'Blocked UPDATES.get calls.', [[{}, this.sources.updatesWaiters()]]),
      renderGauge('xenops_sse_clients', 'Connected GET /events clients.', [[{}, this.sources.sseClients()]]),
      ...renderLimits(this.sources.limits()),
      ...processGauges(),
    ].join('');
  }

  /** The route handler. */
  async serve(res: ServerResponse): Promise<void> {
    const text = await this.render();
    res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}

/** The tasks of each host's VMs (queued and running), one series per host that owns a VM. */
function queuedByHost(projection: Projection): Array<[Labels, number]> {
  const by = new Map<string, number>();
  for (const vm of projection.vms.values()) {
    if (!vm.owner) continue;
    by.set(vm.owner, (by.get(vm.owner) ?? 0) + vm.queue.length);
  }
  return [...by].map(([host, n]) => [{ host }, n]);
}

/** Messages of the log the read model cannot read, and the VMs they quarantine (one series each). */
function damageGauges(damage: readonly DamagedMessage[]): string[] {
  const quarantined = quarantinesOf(damage);
  return [
    renderGauge('xenops_log_damaged_messages', 'Messages of the event log that cannot be read (see xenops verify).', [[{}, damage.length]]),
    renderGauge(
      'xenops_vm_quarantined',
      'VMs whose log stream is damaged, by VM and first damaged seq: their commands are refused.',
      [...quarantined].map(([vm, seq]) => [{ vm, seq: String(seq) }, 1]),
    ),
  ];
}

function renderLimits(limits: readonly LimitUsage[]): string[] {
  const by = (value: (u: LimitUsage) => number): Array<[Labels, number]> => limits.map((u) => [{ resource: u.resource }, value(u)]);
  return [
    renderGauge('xenops_limit', 'Configured maximum of a bounded resource.', by((u) => u.limit)),
    renderGauge('xenops_limit_in_use', 'Current use of a bounded resource (vm_queued_tasks: the longest VM queue).', by((u) => u.inUse)),
    renderCounter('xenops_limit_refusals_total', 'Requests refused because a resource was at its limit.', by((u) => u.refusals)),
  ];
}

/** The process's memory, named as Prometheus' client libraries name it. */
function processGauges(): string[] {
  const m = process.memoryUsage();
  return [
    renderGauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [[{}, m.rss]]),
    renderGauge('nodejs_heap_size_total_bytes', 'V8 heap size in bytes.', [[{}, m.heapTotal]]),
    renderGauge('nodejs_heap_size_used_bytes', 'V8 heap used in bytes.', [[{}, m.heapUsed]]),
    renderGauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects, in bytes.', [[{}, m.external]]),
    renderGauge('nodejs_array_buffers_bytes', 'Memory of ArrayBuffers and Buffers, in bytes.', [[{}, m.arrayBuffers]]),
  ];
}
