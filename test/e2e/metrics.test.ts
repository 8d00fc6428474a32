/**
 * `/metrics` for operators' graphs (issue 16 item 3): task durations by operation, outcome and
 * host; the log's append latency by stream kind; queued tasks per host; on both stores. The
 * Grafana dashboard in docs/ uses only series that a running service exposes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { X, waitTask } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, REPO_ROOT, spawnXenopsd, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

/** The value of one sample of the exposition text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (want.every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

async function exercise(x: Xenopsd): Promise<string> {
  const c = x.client();
  const id = vmId('metrics');
  await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
  expect((await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })))).state).toEqual(['Completed', expect.anything()]);
  // Starting a running VM fails: an outcome of its own.
  expect((await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })))).state[0]).toBe('Failed');
  expect((await waitTask(c, await c.ok<string>('VM.shutdown', X({ id, delay: null })))).state[0]).toBe('Completed');
  return fetch(`${x.url}/metrics`).then((r) => r.text());
}

describe.each(['embedded', 'nats'] as const)('/metrics histograms (%s)', (mode) => {
  it('task durations by operation, outcome and host; append latency by stream kind; queued tasks per host', async () => {
    const x = await spawnXenopsd({ mode, hostId: `metrics-${mode}` });
    const text = await exercise(x);
    const host = x.hostId;
    expect(sample(text, 'xenops_task_duration_seconds_count', { operation: 'VM.start', outcome: 'completed', host })).toBe(1);
    expect(sample(text, 'xenops_task_duration_seconds_count', { operation: 'VM.start', outcome: 'failed', host })).toBe(1);
    expect(sample(text, 'xenops_task_duration_seconds_count', { operation: 'VM.shutdown', outcome: 'completed', host })).toBe(1);
    expect(sample(text, 'xenops_task_duration_seconds_bucket', { operation: 'VM.start', outcome: 'completed', host, le: '+Inf' })).toBe(1);
    expect(sample(text, 'xenops_task_duration_seconds_sum', { operation: 'VM.start', outcome: 'completed', host })).toBeGreaterThan(0);
    expect(sample(text, 'xenops_log_append_duration_seconds_count', { stream_kind: 'vm', outcome: 'stored' })).toBeGreaterThanOrEqual(4);
    expect(sample(text, 'xenops_log_append_duration_seconds_bucket', { stream_kind: 'vm', outcome: 'stored', le: '2.5' })).toBeGreaterThanOrEqual(4);
    expect(sample(text, 'xenops_host_queued_tasks', { host })).toBe(0);
    await x.stop();
  });
});

describe('docs/grafana-dashboard.json', () => {
  it('is a Grafana dashboard whose every query names a metric the service exposes', async () => {
    const dashboard = JSON.parse(readFileSync(`${REPO_ROOT}/docs/grafana-dashboard.json`, 'utf8')) as {
      title: string;
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    expect(dashboard.title).toMatch(/xenops/i);
    const x = await spawnXenopsd({ mode: 'embedded' });
    const text = await exercise(x);
    await x.stop();
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap((m) => (m[2] === 'histogram' ? [`${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!])));
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(queries.length).toBeGreaterThanOrEqual(8);
    for (const { panel, expr } of queries) {
      const names = [...expr.matchAll(/\b(xenops_\w+|process_\w+|nodejs_\w+)\b/g)].map((m) => m[1]!);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const n of names) expect(exposed, `${panel}: ${n}`).toContain(n);
    }
  });
});
