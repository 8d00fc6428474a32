/**
 * Progress of a task on stderr. On a terminal: one line redrawn in place,
 * `start web01 [##########----------]  50%  0.4 s`. Elsewhere: plain lines, once the task has
 * run for a second, one each time it passes a quarter, so logs stay readable.
 */
export interface ProgressSink {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export const BAR_WIDTH = 24;

export function renderBar(fraction: number, width = BAR_WIDTH): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}

export class Progress {
  private lastQuarter = -1;
  private drawn = false;
  private readonly started = Date.now();
  constructor(
    private readonly sink: ProgressSink,
    private readonly label: string,
    private readonly enabled: boolean,
  ) {}

  get tty(): boolean {
    return this.sink.isTTY === true;
  }

  update(fraction: number): void {
    if (!this.enabled) return;
    if (this.tty) {
      const secs = ((Date.now() - this.started) / 1000).toFixed(1);
      this.sink.write(`\r\x1b[K${this.label} ${renderBar(fraction)}  ${secs} s`);
      this.drawn = true;
      return;
    }
    // Quick operations stay quiet in logs and scripts: lines only once it has taken a second.
    if (Date.now() - this.started < 1000) return;
    const q = Math.floor(Math.min(1, Math.max(0, fraction)) * 4);
    if (q === this.lastQuarter || q >= 4) return;
    this.lastQuarter = q;
    this.sink.write(`${this.label}: ${q * 25}%\n`);
  }

  /** Ends the bar: draws it full (on success) and moves to a fresh line. */
  finish(ok: boolean): void {
    if (!this.enabled || !this.tty) return;
    if (ok) this.update(1);
    if (this.drawn) this.sink.write('\n');
    this.drawn = false;
  }
}
