/** Aligned text tables; cells may carry ANSI colour, which does not count towards the width. */
import { stripAnsi } from './colour.js';

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/** Display width of a cell: its characters without colour codes (code points, not UTF-16 units). */
export function visibleWidth(s: string): number {
  return [...stripAnsi(s)].length;
}

/** Renders rows under headers, columns separated by two spaces, no trailing spaces. */
export function renderTable(columns: ReadonlyArray<Column | string>, rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const widths = cols.map((c, i) => Math.max(visibleWidth(c.header), ...rows.map((r) => visibleWidth(r[i] ?? ''))));
  const line = (cells: ReadonlyArray<string>) =>
    cols
      .map((c, i) => {
        const cell = cells[i] ?? '';
        const pad = ' '.repeat(widths[i]! - visibleWidth(cell));
        return c.align === 'right' ? pad + cell : i === cols.length - 1 ? cell : cell + pad;
      })
      .join('  ')
      .replace(/\s+$/, '');
  return [line(cols.map((c) => c.header)), ...rows.map(line)].join('\n') + '\n';
}

/** `key: value` lines with the keys aligned. */
export function renderFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const w = Math.max(0, ...fields.map(([k]) => visibleWidth(k)));
  return fields.map(([k, v]) => `${k}:${' '.repeat(w - visibleWidth(k) + 1)}${v}`.replace(/\s+$/, '')).join('\n') + '\n';
}
