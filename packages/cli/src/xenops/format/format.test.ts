import { afterEach, describe, expect, it, vi } from 'vitest';
import { colourEnabled, paintPower, paintWith } from './colour.js';
import { ByteProgress, renderBar } from './progress.js';
import { renderFields, renderTable, visibleWidth } from './table.js';
import { formatBytes, parseSize } from './units.js';

describe('tables', () => {
  it('aligns columns, right-aligns numbers, trims trailing space', () => {
    const out = renderTable(['NAME', 'STATE', { header: 'MEM', align: 'right' }, 'NOTE'], [
      ['web01', 'Running', '1G', ''],
      ['a-much-longer-name', 'Halted', '512M', 'x'],
    ]);
    expect(out).toBe(
      'NAME                STATE     MEM  NOTE\n' +
      'web01               Running    1G\n' +
      'a-much-longer-name  Halted   512M  x\n',
    );
  });

  it('ignores colour codes when measuring', () => {
    const paint = paintWith(true);
    const cell = paintPower(paint, 'Running');
    expect(cell).toBe('\x1b[32mRunning\x1b[39m');
    expect(visibleWidth(cell)).toBe(7);
    const out = renderTable(['STATE', 'X'], [[cell, '1'], ['Halted', '2']]);
    const lines = out.trimEnd().split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
    expect(lines).toEqual(['STATE    X', 'Running  1', 'Halted   2']);
  });

  it('renders key: value fields', () => {
    expect(renderFields([['name', 'a'], ['power state', 'Halted']])).toBe('name:        a\npower state: Halted\n');
  });
});

describe('colour', () => {
  it('paints once colour is decided on, whatever FORCE_COLOR says about process.stdout', () => {
    const saved = process.env.FORCE_COLOR;
    process.env.FORCE_COLOR = '0'; // as some CI runners set it; the decision is colourEnabled's
    try {
      expect(paintWith(true)('green', 'Running')).toBe('\x1b[32mRunning\x1b[39m');
    } finally {
      if (saved === undefined) delete process.env.FORCE_COLOR;
      else process.env.FORCE_COLOR = saved;
    }
  });

  it('only on a terminal without NO_COLOR', () => {
    expect(colourEnabled({ isTTY: true }, {})).toBe(true);
    expect(colourEnabled({ isTTY: false }, {})).toBe(false);
    expect(colourEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(paintWith(false)('red', 'x')).toBe('x');
  });
});

describe('units and progress', () => {
  it('parses and prints sizes', () => {
    expect(parseSize('512')).toBe(512 * 1024 * 1024);
    expect(parseSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseSize('1536MiB')).toBe(1536 * 1024 ** 2);
    expect(() => parseSize('lots')).toThrow(/invalid size/);
    expect(formatBytes(1024 ** 3)).toBe('1G');
    expect(formatBytes(512 * 1024 ** 2)).toBe('512M');
  });

  it('draws a bar', () => {
    expect(renderBar(0.5, 10)).toBe('[#####-----]  50%');
    expect(renderBar(1, 4)).toBe('[####] 100%');
    expect(renderBar(NaN, 4)).toBe('[----]   0%');
  });
});

describe('byte progress (backup, restore)', () => {
  afterEach(() => vi.useRealTimers());
  const sink = (isTTY: boolean) => {
    const lines: string[] = [];
    return { lines, isTTY, write: (s: string) => lines.push(s) };
  };

  it('redraws one line on a terminal, with the share when the total is known, and ends it', () => {
    vi.useFakeTimers({ now: 0 });
    const s = sink(true);
    const p = new ByteProgress(s, 'restore', true, 4 * 1024 * 1024);
    p.update(1024 * 1024);
    vi.advanceTimersByTime(200);
    p.update(3 * 1024 * 1024);
    p.finish(4 * 1024 * 1024);
    expect(s.lines).toEqual(['\r\x1b[Krestore: 1M of 4M (25%)', '\r\x1b[Krestore: 3M of 4M (75%)', '\r\x1b[Krestore: 4M of 4M (100%)\n']);
  });

  it('elsewhere stays quiet for a second, then writes a plain line every five seconds', () => {
    vi.useFakeTimers({ now: 0 });
    const s = sink(false);
    const p = new ByteProgress(s, 'backup', true);
    p.update(10);
    vi.advanceTimersByTime(1500);
    p.update(2048);
    vi.advanceTimersByTime(1000);
    p.update(4096);
    vi.advanceTimersByTime(5000);
    p.update(1.5 * 1024 * 1024);
    p.finish(2 * 1024 * 1024);
    expect(s.lines).toEqual(['backup: 2K\n', 'backup: 1.5M\n']);
  });

  it('writes nothing when disabled (--json)', () => {
    const s = sink(true);
    const p = new ByteProgress(s, 'backup', false);
    p.update(1);
    p.finish(1);
    expect(s.lines).toEqual([]);
  });
});
