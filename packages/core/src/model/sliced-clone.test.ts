import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { deserializeSliced, serializeSliced } from './sliced-clone.js';

describe('sliced clone', () => {
  it('reads back the head and every list, Maps and shared objects included', async () => {
    const shared = new Map([['k', 1]]);
    const vms = Array.from({ length: 1234 }, (_, i) => ({ id: `vm${i}`, devices: shared, n: BigInt(i) }));
    const data = await serializeSliced({ schema: 2, seq: 7 }, [vms, [{ id: 't1' }]]);
    const read = deserializeSliced(data);
    expect(read).toEqual({ head: { schema: 2, seq: 7 }, lists: [vms, [{ id: 't1' }]] });
  });

  it('lets the event loop run between slices', async () => {
    let turns = 0;
    const ticking = setInterval(() => turns++, 0);
    try {
      await serializeSliced({}, [Array.from({ length: 20_000 }, (_, i) => ({ i, name: `vm-${i}` }))]);
    } finally {
      clearInterval(ticking);
    }
    expect(turns).toBeGreaterThan(0);
  });

  it('reads a state written as one clone (snapshots of earlier versions) as `whole`', () => {
    const old = { schema: 2, seq: 3, vms: [{ id: 'a' }], tasks: [] };
    expect(deserializeSliced(serialize(old))).toEqual({ whole: old });
  });

  it('refuses a damaged list length', () => {
    expect(() => deserializeSliced(serialize({ slicedLengths: [-1] }))).toThrow(/bad list length/);
  });
});
