/** A minimal Prometheus text exposition (format 0.0.4): counters, gauges, histograms with labels. */

export type Labels = Readonly<Record<string, string>>;

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Labels, extra?: readonly [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
}

/** The series key of a label set (every RPC updates two series: no JSON, no arrays). */
function keyOf(labels: Labels): string {
  let k = '';
  for (const name in labels) k += `${name}\u0000${labels[name]}\u0001`;
  return k;
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels, by = 1): void {
    const k = keyOf(labels);
    const cur = this.values.get(k);
    if (cur) cur.value += by;
    else this.values.set(k, { labels, value: by });
  }
  render(): string {
    let out = header(this.name, this.help, 'counter');
    for (const { labels, value } of this.values.values()) out += `${this.name}${formatLabels(labels)} ${formatNumber(value)}\n`;
    return out;
  }
}

/** A gauge whose samples are computed at scrape time. */
export function renderGauge(name: string, help: string, samples: ReadonlyArray<readonly [Labels, number]>): string {
  let out = header(name, help, 'gauge');
  for (const [labels, value] of samples) out += `${name}${formatLabels(labels)} ${formatNumber(value)}\n`;
  return out;
}

/** A counter whose samples are read at scrape time from elsewhere. */
export function renderCounter(name: string, help: string, samples: ReadonlyArray<readonly [Labels, number]>): string {
  let out = header(name, help, 'counter');
  for (const [labels, value] of samples) out += `${name}${formatLabels(labels)} ${formatNumber(value)}\n`;
  return out;
}

export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}
  observe(labels: Labels, value: number): void {
    const k = keyOf(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string {
    let out = header(this.name, this.help, 'histogram');
    for (const s of this.series.values()) {
      for (let i = 0; i < this.buckets.length; i++) {
        out += `${this.name}_bucket${formatLabels(s.labels, ['le', formatNumber(this.buckets[i]!)])} ${s.counts[i]}\n`;
      }
      out += `${this.name}_bucket${formatLabels(s.labels, ['le', '+Inf'])} ${s.count}\n`;
      out += `${this.name}_sum${formatLabels(s.labels)} ${formatNumber(s.sum)}\n`;
      out += `${this.name}_count${formatLabels(s.labels)} ${s.count}\n`;
    }
    return out;
  }
}
