import { setImmediate as nextTurn } from 'node:timers/promises';
import { DefaultDeserializer, DefaultSerializer } from 'node:v8';

/**
 * Structured clones of large states (fold and agent snapshots) written a slice at a time. A
 * clone of 60,000 VMs takes ~0.75 s of one thread (measured): in one call it stopped the event
 * loop that long every few thousand messages, and every request waited. Here the head (small,
 * possibly live state) is cloned at once and each list an item at a time, the event loop running
 * between slices; the lists' items must not change meanwhile (folds replace an aggregate, they
 * never mutate one that was published).
 *
 * The bytes are a V8 serialization stream: the head (with the lists' lengths), then every item.
 * A snapshot written as one clone (`v8.serialize` of the whole state) reads back as `whole`.
 */
const ITEMS_PER_SLICE = 500;
const LENGTHS = 'slicedLengths';

export async function serializeSliced(head: object, lists: readonly (readonly unknown[])[]): Promise<Buffer> {
  const out = new DefaultSerializer();
  out.writeHeader();
  out.writeValue({ ...head, [LENGTHS]: lists.map((l) => l.length) });
  let written = 0;
  for (const list of lists) {
    for (const item of list) {
      out.writeValue(item);
      if (++written % ITEMS_PER_SLICE === 0) await nextTurn();
    }
  }
  return out.releaseBuffer();
}

/** Reads what `serializeSliced` wrote (`head` and `lists`), or a single clone (`whole`). Throws on damaged bytes. */
export function deserializeSliced(data: Uint8Array): { readonly head: Record<string, unknown>; readonly lists: unknown[][] } | { readonly whole: unknown } {
  const input = new DefaultDeserializer(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  input.readHeader();
  const first = input.readValue() as Record<string, unknown> | undefined;
  const lengths = first?.[LENGTHS];
  if (!Array.isArray(lengths)) return { whole: first };
  const { [LENGTHS]: _lengths, ...head } = first!;
  const lists = lengths.map((n) => {
    if (!Number.isSafeInteger(n) || (n as number) < 0) throw new RangeError(`sliced clone: bad list length ${String(n)}`);
    const list: unknown[] = [];
    for (let i = 0; i < (n as number); i++) list.push(input.readValue());
    return list;
  });
  return { head, lists };
}
