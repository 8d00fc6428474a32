import { describe, expect, it } from 'vitest';
import { addToPage, clearPage, emptyPage, unpackPage } from './fold-helper.js';

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("the fold helper's pages", () => {
  it('pack messages and give them back alike; a reused page holds only its new messages', () => {
    const page = emptyPage(16);
    expect(addToPage(page, { seq: 1, stream: 'vm/a', data: bytes(10, 1) })).toBe(true);
    expect(addToPage(page, { seq: 2, stream: 'vm/b', data: bytes(0, 0) })).toBe(true);
    // Does not fit the 6 bytes left: refused, the page unchanged.
    expect(addToPage(page, { seq: 3, stream: 'vm/c', data: bytes(7, 3) })).toBe(false);
    expect([...unpackPage(page)].map((m) => [m.seq, m.stream, [...m.data]])).toEqual([
      [1, 'vm/a', [...bytes(10, 1)]],
      [2, 'vm/b', []],
    ]);
    clearPage(page);
    expect(addToPage(page, { seq: 3, stream: 'vm/c', data: bytes(7, 3) })).toBe(true);
    expect([...unpackPage(page)].map((m) => [m.seq, m.stream, m.data.length])).toEqual([[3, 'vm/c', 7]]);
  });

  it('a message bigger than an empty page grows it; a page is full at 1,024 messages', () => {
    const page = emptyPage(4);
    expect(addToPage(page, { seq: 1, stream: 's', data: bytes(100, 9) })).toBe(true);
    expect([...unpackPage(page)][0]!.data).toEqual(bytes(100, 9));
    const full = emptyPage();
    let n = 0;
    while (addToPage(full, { seq: n + 1, stream: 's', data: bytes(1, n & 255) })) n++;
    expect(n).toBe(1024);
    expect([...unpackPage(full)].map((m) => m.seq)).toEqual(Array.from({ length: 1024 }, (_, i) => i + 1));
  });
});
