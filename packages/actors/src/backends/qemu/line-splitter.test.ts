import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from './line-splitter.js';

function split(chunks: Buffer[], max = 1 << 20) {
  const lines: string[] = [];
  const overflows: string[] = [];
  const s = new LineSplitter(max, (l) => lines.push(l), (h) => overflows.push(h));
  for (const c of chunks) s.push(c);
  return { lines, overflows, pending: s.pending() };
}

/** Cuts a buffer at the given offsets. */
const cut = (buf: Buffer, at: number[]) => {
  const points = [...new Set(at.map((a) => a % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
};

describe('LineSplitter', () => {
  it('yields the same lines however the bytes are chunked, multi-byte characters included (property)', () => {
    const line = fc.string({ unit: 'grapheme' }).map((l) => l.replace(/[\r\n]/g, ''));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 }), fc.boolean(), (lines, at, crlf) => {
        const bytes = Buffer.from(lines.map((l) => `${l}${crlf ? '\r\n' : '\n'}`).join(''), 'utf8');
        expect(split(cut(bytes, at)).lines).toEqual(lines);
      }),
    );
  });

  it('keeps an unterminated tail pending', () => {
    expect(split([Buffer.from('a\nbc')])).toMatchObject({ lines: ['a'], pending: 'bc' });
  });

  it('drops a line over the limit through to its newline, reporting its head once', () => {
    const r = split([Buffer.from('ok\n'), Buffer.from('x'.repeat(30)), Buffer.from('y'.repeat(30)), Buffer.from('zz\nafter\n')], 16);
    expect(r.lines).toEqual(['ok', 'after']);
    expect(r.overflows).toHaveLength(1);
    expect(r.overflows[0]?.startsWith('xxxx')).toBe(true);
  });
});
