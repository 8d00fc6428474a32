import { describe, expect, it } from 'vitest';
import { PageQueue } from './page-queue.js';

async function drain<T>(q: PageQueue<T>): Promise<T[][]> {
  const out: T[][] = [];
  for await (const p of q) out.push(p);
  return out;
}

describe('PageQueue', () => {
  it('hands over full pages as they fill, and the rest at the end', async () => {
    const q = new PageQueue<number>(3);
    for (let i = 0; i < 7; i++) q.push(i);
    q.end();
    expect(await drain(q)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('a waiting reader gets a partial page once the pushing turn is over', async () => {
    const q = new PageQueue<number>(100);
    const it = q[Symbol.asyncIterator]();
    const first = it.next();
    q.push(1);
    q.push(2);
    expect(await first).toEqual({ value: [1, 2], done: false });
    q.push(3);
    q.end();
    expect(await it.next()).toEqual({ value: [3], done: false });
    expect((await it.next()).done).toBe(true);
  });

  it('fail: the reader gets what was queued, then the error; pushes after the end are dropped', async () => {
    const q = new PageQueue<string>(2);
    q.push('a');
    q.push('b');
    q.push('c');
    q.fail(new Error('gone'));
    q.push('d');
    q.fail(new Error('ignored'));
    const got: string[][] = [];
    await expect(
      (async () => {
        for await (const p of q) got.push(p);
      })(),
    ).rejects.toThrow('gone');
    expect(got).toEqual([['a', 'b'], ['c']]);
    expect(q.ended).toBe(true);
  });

  it('end after end changes nothing; a page size below 1 is refused', async () => {
    const q = new PageQueue<number>(1);
    q.end();
    q.fail(new Error('late'));
    expect(await drain(q)).toEqual([]);
    expect(() => new PageQueue<number>(0)).toThrow(RangeError);
  });
});
