import type { Audit } from './audit.js';
import type { EventBody } from './event.js';

/**
 * Event batches this process verified on their way into the log (the round trip of
 * `CheckedEventLog`), kept so that reading one back (the read model's tail, the agent's) does not
 * decode it again: a batch decodes to the same events whatever its seq, and every process folds
 * its own writes two or three times. Found by their bytes, so a hit is exact whichever log or store
 * the message comes back from; bounded, oldest first out.
 */
interface VerifiedBatch {
  readonly data: Uint8Array;
  readonly events: readonly { readonly audit: Audit; readonly body: EventBody }[];
}

/** About half a second of writes at full speed: local folds read a write back within milliseconds. */
const CAPACITY = 1024;
const byKey = new Map<number, VerifiedBatch[]>();
const oldestFirst: VerifiedBatch[] = [];
let oldest = 0;

export function rememberVerifiedBatch(data: Uint8Array, events: VerifiedBatch['events']): void {
  const batch: VerifiedBatch = { data, events };
  const key = keyOf(data);
  const bucket = byKey.get(key);
  if (bucket) bucket.push(batch);
  else byKey.set(key, [batch]);
  if (oldestFirst.length < CAPACITY) {
    oldestFirst.push(batch);
    return;
  }
  forget(oldestFirst[oldest]!);
  oldestFirst[oldest] = batch;
  oldest = (oldest + 1) % CAPACITY;
}

/** The events of a batch with exactly these bytes, if this process verified one lately. */
export function verifiedEventsOf(data: Uint8Array): VerifiedBatch['events'] | undefined {
  // A process that has written nothing yet (a start folding its log) has nothing to find.
  if (byKey.size === 0) return undefined;
  const bucket = byKey.get(keyOf(data));
  if (!bucket) return undefined;
  for (let i = bucket.length - 1; i >= 0; i--) {
    const b = bucket[i]!;
    if (b.data === data || Buffer.compare(b.data, data) === 0) return b.events;
  }
  return undefined;
}

function forget(batch: VerifiedBatch): void {
  const key = keyOf(batch.data);
  const bucket = byKey.get(key);
  if (!bucket) return;
  const i = bucket.indexOf(batch);
  if (i >= 0) bucket.splice(i, 1);
  if (bucket.length === 0) byKey.delete(key);
}

/**
 * A cheap hash of the bytes: the length and 32 bytes sampled across them (the batches of one
 * kind have equal lengths; their ids and times differ). Equal keys are told apart by their bytes.
 */
function keyOf(data: Uint8Array): number {
  let h = data.length | 0;
  const step = Math.max(1, data.length >> 5);
  for (let i = data.length - 1; i >= 0; i -= step) h = Math.imul(h ^ data[i]!, 0x01000193);
  return h;
}
