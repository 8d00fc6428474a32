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

import { formatBytes } from './units.js';

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

/**
 * Progress of work counted in bytes (backup, restore) on stderr: on a terminal one line redrawn
 * in place, `backup: 12.5M written`; elsewhere a plain line every few seconds once it has taken
 * more than a second, so logs stay short.
 */
export class ByteProgress {
  private readonly started = Date.now();
  private lastLine = Number.NEGATIVE_INFINITY;
  private drawn = false;
  constructor(
    private readonly sink: ProgressSink,
    private readonly label: string,
    private readonly enabled: boolean,
    private readonly total?: number,
  ) {}

  private text(bytes: number): string {
    const of = this.total ? ` of ${formatBytes(this.total)} (${Math.min(100, Math.floor((100 * bytes) / this.total))}%)` : '';
    return `${this.label}: ${formatBytes(bytes)}${of}`;
  }

  update(bytes: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (this.sink.isTTY === true) {
      if (now - this.lastLine < 100) return;
      this.lastLine = now;
      this.sink.write(`\r\x1b[K${this.text(bytes)}`);
      this.drawn = true;
      return;
    }
    if (now - this.started < 1000 || now - this.lastLine < 5000) return;
    this.lastLine = now;
    this.sink.write(`${this.text(bytes)}\n`);
  }

  /** Ends the line on a terminal (with the final count). */
  finish(bytes: number): void {
    if (!this.enabled || this.sink.isTTY !== true) return;
    if (this.drawn || bytes > 0) this.sink.write(`\r\x1b[K${this.text(bytes)}\n`);
    this.drawn = false;
  }
}
