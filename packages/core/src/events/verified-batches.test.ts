import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, type PendingEvent } from './codec.js';
import { assertBatchRoundTrips } from './checked-event-log.js';
import { rememberVerifiedBatch, verifiedEventsOf } from './verified-batches.js';

const audit = { dbg: 'verified-batches test', timeMs: 1_700_000_000_000, host: 'h1', actor: 'vm/a' };
const removed = (vmId: string): PendingEvent => ({ audit, body: { type: 'VmRemoved', vmId } });

describe('verified batches', () => {
  it('a batch that passed the round trip is read back without decoding, at the seq it is read with', () => {
    const data = encodeBatch([removed('vm-verified-1')]);
    assertBatchRoundTrips('vm/vm-verified-1', data);
    // The same bytes in another buffer (as a store hands them back) are the same batch.
    const copy = new Uint8Array(data);
    expect(verifiedEventsOf(copy)).toBeDefined();
    const events = decodeBatch(42, copy);
    expect(events).toEqual([{ seq: 42, audit, body: { type: 'VmRemoved', vmId: 'vm-verified-1' } }]);
    expect(decodeBatch(43, copy)[0]!.seq).toBe(43);
  });

  it('bytes that differ, even at the same length, are decoded for what they are', () => {
    const a = encodeBatch([removed('vm-verified-A')]);
    const b = encodeBatch([removed('vm-verified-B')]);
    expect(a.length).toBe(b.length);
    assertBatchRoundTrips('vm/vm-verified-A', a);
    expect(verifiedEventsOf(b)).toBeUndefined();
    expect(decodeBatch(7, b)[0]!.body).toEqual({ type: 'VmRemoved', vmId: 'vm-verified-B' });
  });

  it('keeps the latest batches only', () => {
    const first = encodeBatch([removed('vm-verified-oldest')]);
    rememberVerifiedBatch(first, decodeBatch(0, first));
    expect(verifiedEventsOf(first)).toBeDefined();
    for (let i = 0; i < 1100; i++) {
      const d = encodeBatch([removed(`vm-verified-${i}`)]);
      rememberVerifiedBatch(d, decodeBatch(0, d));
    }
    expect(verifiedEventsOf(first)).toBeUndefined();
    expect(verifiedEventsOf(encodeBatch([removed('vm-verified-1099')]))).toBeDefined();
  });
});
