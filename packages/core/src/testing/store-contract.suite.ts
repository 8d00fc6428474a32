/**
 * The contract every implementation of the storage ports must pass (embedded and NATS). Each
 * store package runs it on its own store (`@xenops/core/testing`, a test-only entry point).
 * `open` must return a fresh, empty, isolated store each time it is called; the suite closes it.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BusRemoteError, BusTimeoutError, NoResponderError } from '../store/command-bus.js';
import { ConcurrencyError, StoreUnavailableError, type StoredMessage } from '../store/event-log.js';
import type { Stores } from '../store/stores.js';
import type { StoreLogger } from '../store/tail-util.js';
import { UndecodableEventError, withCheckedAppends } from '../events/checked-event-log.js';
import { decodeBatch, encodeBatch } from '../events/codec.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keys that must survive any escaping. */
export const AWKWARD_KEYS = [
  'vm/0b8f6f7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
  'with.dots.in.it',
  'with spaces  and\ttabs',
  'ünïcödé/日本語/🚀',
  '%',
  '%25',
  '*',
  '>',
  'a.>',
  '=',
  '.leading',
  'trailing.',
  '-',
  '_',
  'A-Z_a-z_0-9',
];

/** `open` opens fresh stores that report to `log` (the logger a store's owner injects). */
export function describeStoreContract(name: string, open: (log: StoreLogger) => Promise<Stores>): void {
  describe(`store contract: ${name}`, () => {
    const opened: Stores[] = [];
    const fresh = async (log: StoreLogger = () => {}): Promise<Stores> => {
      const s = await open(log);
      opened.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    describe('event log', () => {
      it('starts empty', async () => {
        const { log } = await fresh();
        expect(await log.head()).toBe(0);
        expect(await log.lastSeqOf('vm/x')).toBe(0);
        expect(await collect(log.read(0))).toEqual([]);
        expect(await collect(log.readStream('vm/x'))).toEqual([]);
      });

      it('assigns strictly increasing seqs across streams', async () => {
        const { log } = await fresh();
        const seqs: number[] = [];
        for (let i = 0; i < 10; i++) seqs.push(await log.append({ stream: `vm/${i % 3}`, data: enc(`m${i}`) }));
        for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
        expect(seqs[0]).toBeGreaterThan(0);
        expect(await log.head()).toBe(seqs[9]);
        expect(await log.lastSeqOf('vm/0')).toBe(seqs[9]);
        expect(await log.lastSeqOf('vm/1')).toBe(seqs[7]);
        expect(await log.lastSeqOf('vm/2')).toBe(seqs[8]);
        // concurrent appends also get distinct seqs
        const many = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ stream: `c/${i % 5}`, data: enc(`${i}`) })));
        expect(new Set(many).size).toBe(50);
        expect(Math.min(...many)).toBeGreaterThan(seqs[9]!);
      });

      it('round-trips binary payloads, including empty ones', async () => {
        const { log } = await fresh();
        const bin = new Uint8Array(256).map((_, i) => i);
        const a = await log.append({ stream: 's', data: bin });
        const b = await log.append({ stream: 's', data: new Uint8Array(0) });
        const sub = bin.subarray(10, 20); // a view with an offset
        const c = await log.append({ stream: 's', data: sub });
        const got = await collect(log.read(0));
        expect(got.map((m) => m.seq)).toEqual([a, b, c]);
        expect(Array.from(got[0]!.data)).toEqual(Array.from(bin));
        expect(got[1]!.data.byteLength).toBe(0);
        expect(Array.from(got[2]!.data)).toEqual(Array.from(sub));
        expect(got[0]!.data).toBeInstanceOf(Uint8Array);
      });

      it('checks the expected last seq of the stream (optimistic concurrency)', async () => {
        const { log } = await fresh();
        const first = await log.append({ stream: 'vm/a', data: enc('1'), expectedLastSeq: 0 });
        const err = await log.append({ stream: 'vm/a', data: enc('x'), expectedLastSeq: 0 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConcurrencyError);
        expect((err as ConcurrencyError).stream).toBe('vm/a');
        expect((err as ConcurrencyError).expectedLastSeq).toBe(0);
        // another stream moves the global head but not vm/a's last seq
        const other = await log.append({ stream: 'vm/b', data: enc('b'), expectedLastSeq: 0 });
        const second = await log.append({ stream: 'vm/a', data: enc('2'), expectedLastSeq: first });
        expect(second).toBeGreaterThan(other);
        await expect(log.append({ stream: 'vm/a', data: enc('y'), expectedLastSeq: first })).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
        await expect(log.append({ stream: 'vm/a', data: enc('z'), expectedLastSeq: other })).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
        // a rejected append stores nothing
        expect((await collect(log.readStream('vm/a'))).map((m) => dec(m.data))).toEqual(['1', '2']);
        expect(await log.head()).toBe(second);
        // without expectedLastSeq there is no check
        expect(await log.append({ stream: 'vm/a', data: enc('3') })).toBeGreaterThan(second);
      });

      it('lets exactly one of several racing writers win', async () => {
        const { log } = await fresh();
        const base = await log.append({ stream: 'vm/race', data: enc('0') });
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => log.append({ stream: 'vm/race', data: enc(`w${i}`), expectedLastSeq: base })),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
      });

      it('deduplicates by messageId and returns the original seq', async () => {
        const { log } = await fresh();
        const a = await log.append({ stream: 'vm/a', data: enc('once'), messageId: 'id-1' });
        await log.append({ stream: 'vm/b', data: enc('other') });
        const again = await log.append({ stream: 'vm/a', data: enc('once'), messageId: 'id-1' });
        expect(again).toBe(a);
        // a retry of a write that carried an expectation also returns the original seq
        const c = await log.append({ stream: 'vm/c', data: enc('c'), messageId: 'id-2', expectedLastSeq: 0 });
        expect(await log.append({ stream: 'vm/c', data: enc('c'), messageId: 'id-2', expectedLastSeq: 0 })).toBe(c);
        // concurrent retries: one message
        const par = await Promise.all(Array.from({ length: 10 }, () => log.append({ stream: 'vm/d', data: enc('d'), messageId: 'id-3' })));
        expect(new Set(par).size).toBe(1);
        const all = await collect(log.read(0));
        expect(all.map((m) => dec(m.data))).toEqual(['once', 'other', 'c', 'd']);
      });

      it('reads ranges', async () => {
        const { log } = await fresh();
        const seqs: number[] = [];
        for (let i = 0; i < 6; i++) seqs.push(await log.append({ stream: `s${i % 2}`, data: enc(`${i}`) }));
        const [s0, s1, s2, s3, s4, s5] = seqs as [number, number, number, number, number, number];
        expect((await collect(log.read(0))).map((m) => m.seq)).toEqual(seqs);
        expect((await collect(log.read(s1))).map((m) => m.seq)).toEqual([s2, s3, s4, s5]);
        expect((await collect(log.read(s1, s3))).map((m) => m.seq)).toEqual([s2, s3]);
        expect((await collect(log.read(s0, s0))).map((m) => m.seq)).toEqual([]);
        expect((await collect(log.read(s5))).map((m) => m.seq)).toEqual([]);
        expect((await collect(log.read(s3, s5 + 1000))).map((m) => m.seq)).toEqual([s4, s5]);
        const m = (await collect(log.read(s2, s3)))[0]!;
        expect(m).toMatchObject({ seq: s3, stream: 's1' });
        expect(dec(m.data)).toBe('3');
      });

      it('retention: truncateBefore drops older messages, keeps the newest, never reuses a seq', async () => {
        const { log } = await fresh();
        expect(await log.firstSeq()).toBe(1);
        const seqs: number[] = [];
        for (let i = 0; i < 6; i++) seqs.push(await log.append({ stream: `r${i % 2}`, data: enc(`${i}`) }));
        expect(await log.firstSeq()).toBe(seqs[0]);
        await log.truncateBefore(seqs[3]!);
        expect(await log.firstSeq()).toBe(seqs[3]);
        expect((await collect(log.read(0))).map((m) => m.seq)).toEqual(seqs.slice(3));
        expect((await collect(log.readStream('r0'))).map((m) => m.seq)).toEqual([seqs[4]]);
        expect(await log.head()).toBe(seqs[5]);
        // Beyond the head: everything but the newest message goes.
        await log.truncateBefore(seqs[5]! + 100);
        expect((await collect(log.read(0))).map((m) => m.seq)).toEqual([seqs[5]]);
        expect(await log.head()).toBe(seqs[5]);
        const next = await log.append({ stream: 'r0', data: enc('after') });
        expect(next).toBeGreaterThan(seqs[5]!);
        expect(await log.firstSeq()).toBe(seqs[5]);
      });

      it('read without toSeq stops at the head at call time', async () => {
        const { log } = await fresh();
        const a = await log.append({ stream: 's', data: enc('a') });
        const it = log.read(0);
        await log.append({ stream: 's', data: enc('b') });
        expect((await collect(it)).map((m) => m.seq)).toEqual([a]);
      });

      it('reads more than one page', async () => {
        const { log } = await fresh();
        const n = 1500;
        const seqs = await Promise.all(Array.from({ length: n }, (_, i) => log.append({ stream: `p/${i % 2}`, data: enc(`${i}`) })));
        seqs.sort((x, y) => x - y);
        expect((await collect(log.read(0))).map((m) => m.seq)).toEqual(seqs);
        const odd = await collect(log.readStream('p/1'));
        expect(odd).toHaveLength(n / 2);
        expect(odd.every((m) => m.stream === 'p/1')).toBe(true);
      });

      it('readPages gives what read gives, in non-empty pages, ranges and the head at call time included', async () => {
        const { log } = await fresh();
        const n = 2500;
        const seqs = await Promise.all(Array.from({ length: n }, (_, i) => log.append({ stream: `q/${i % 3}`, data: enc(`${i}`) })));
        seqs.sort((x, y) => x - y);
        const flat = async (after: number, to?: number) => {
          const pages = await collect(log.readPages(after, to));
          expect(pages.every((p) => p.length > 0)).toBe(true);
          return pages.flat().map((m) => [m.seq, m.stream, dec(m.data)]);
        };
        const asRead = async (after: number, to?: number) => (await collect(log.read(after, to))).map((m) => [m.seq, m.stream, dec(m.data)]);
        expect(await flat(0)).toEqual(await asRead(0));
        expect((await flat(0)).map(([seq]) => seq)).toEqual(seqs);
        expect((await collect(log.readPages(0))).length).toBeGreaterThan(1);
        expect(await flat(seqs[100]!, seqs[2000])).toEqual(await asRead(seqs[100]!, seqs[2000]));
        expect(await flat(seqs[n - 1]!)).toEqual([]);
        const it = log.readPages(seqs[n - 2]!);
        await log.append({ stream: 'q/0', data: enc('later') });
        expect((await collect(it)).flat().map((m) => m.seq)).toEqual([seqs[n - 1]]);
      });

      it('readStream returns only that stream, ascending, after afterSeq', async () => {
        const { log } = await fresh();
        const mine: number[] = [];
        for (let i = 0; i < 12; i++) {
          const stream = i % 3 === 0 ? 'vm/mine' : i % 3 === 1 ? 'vm/mine2' : 'vm/min';
          const seq = await log.append({ stream, data: enc(`${i}`) });
          if (stream === 'vm/mine') mine.push(seq);
        }
        const got = await collect(log.readStream('vm/mine'));
        expect(got.map((m) => m.seq)).toEqual(mine);
        expect(got.every((m) => m.stream === 'vm/mine')).toBe(true);
        expect((await collect(log.readStream('vm/mine', mine[1]))).map((m) => m.seq)).toEqual(mine.slice(2));
        expect(await collect(log.readStream('vm/none'))).toEqual([]);
        expect(await collect(log.readStream('vm/mine', mine[3]))).toEqual([]);
      });

      it('round-trips awkward stream keys', async () => {
        const { log } = await fresh();
        const seqOf = new Map<string, number>();
        for (const k of AWKWARD_KEYS) seqOf.set(k, await log.append({ stream: k, data: enc(k), expectedLastSeq: 0 }));
        for (const k of AWKWARD_KEYS) {
          expect(await log.lastSeqOf(k)).toBe(seqOf.get(k));
          const got = await collect(log.readStream(k));
          expect(got.map((m) => [m.stream, dec(m.data)])).toEqual([[k, k]]);
        }
        const all = await collect(log.read(0));
        expect(all.map((m) => m.stream)).toEqual(AWKWARD_KEYS);
        expect(all.every((m) => dec(m.data) === m.stream)).toBe(true);
        // keys differing only by escaping-relevant characters stay apart
        expect(await log.lastSeqOf('with_dots_in_it')).toBe(0);
        expect(await log.lastSeqOf('with.dots')).toBe(0);
      });

      it('tail replays stored messages, then delivers live ones in order without gaps', async () => {
        const { log } = await fresh();
        const stored: number[] = [];
        for (let i = 0; i < 20; i++) stored.push(await log.append({ stream: `vm/${i % 4}`, data: enc(`${i}`) }));
        const got: StoredMessage[] = [];
        let inHandler = 0;
        let overlap = false;
        const sub = log.tail(0, async (m) => {
          inHandler++;
          if (inHandler > 1) overlap = true;
          if (m.seq % 7 === 0) await sleep(1);
          got.push(m);
          inHandler--;
        });
        // 200 concurrent appends racing with the replay
        const live = await Promise.all(
          Array.from({ length: 200 }, (_, i) => log.append({ stream: `vm/${i % 10}`, data: enc(`live${i}`) })),
        );
        const expected = [...stored, ...live].sort((a, b) => a - b);
        await waitFor(() => got.length >= expected.length, 20_000, `${expected.length} deliveries (got ${got.length})`);
        await sleep(50);
        await sub.close();
        expect(overlap).toBe(false);
        expect(got.map((m) => m.seq)).toEqual(expected);
        for (let i = 1; i < expected.length; i++) expect(expected[i]).toBe(expected[i - 1]! + 1);
        const bySeq = new Map((await collect(log.read(0))).map((m) => [m.seq, m]));
        for (const m of got) {
          expect(m.stream).toBe(bySeq.get(m.seq)!.stream);
          expect(dec(m.data)).toBe(dec(bySeq.get(m.seq)!.data));
        }
      });

      it('tail starts after afterSeq, also beyond the head, and stops when closed', async () => {
        const { log } = await fresh();
        const seqs: number[] = [];
        for (let i = 0; i < 5; i++) seqs.push(await log.append({ stream: 's', data: enc(`${i}`) }));
        const got: number[] = [];
        const sub = log.tail(seqs[2]!, (m) => {
          got.push(m.seq);
        });
        await waitFor(() => got.length === 2, 10_000, 'replay');
        expect(got).toEqual([seqs[3], seqs[4]]);
        await sub.close();
        await log.append({ stream: 's', data: enc('after close') });
        await sleep(200);
        expect(got).toEqual([seqs[3], seqs[4]]);

        // a tail that starts beyond the head waits for that seq
        const head = await log.head();
        const later: number[] = [];
        const sub2 = log.tail(head + 1, (m) => {
          later.push(m.seq);
        });
        const x = await log.append({ stream: 's', data: enc('x') });
        const y = await log.append({ stream: 's', data: enc('y') });
        expect(x).toBe(head + 1);
        await waitFor(() => later.length === 1, 10_000, 'live delivery');
        expect(later).toEqual([y]);
        await sub2.close();
      });

      it('tail survives a failing handler, reports it to the injected logger, and can be closed from inside the handler', async () => {
        const errors: string[] = [];
        const { log } = await fresh((line) => errors.push(line));
        {
          const got: number[] = [];
          for (let i = 0; i < 3; i++) await log.append({ stream: 's', data: enc(`${i}`) });
          let sub: { close(): Promise<void> } | undefined = undefined;
          let closedFromInside = false;
          sub = log.tail(0, async (m) => {
            got.push(m.seq);
            if (got.length === 1) throw new Error('boom');
            if (got.length === 3) {
              await sub!.close();
              closedFromInside = true;
            }
          });
          await waitFor(() => closedFromInside, 10_000, 'close from inside the handler');
          await log.append({ stream: 's', data: enc('late') });
          await sleep(100);
          expect(got).toHaveLength(3);
          expect(errors).toEqual([`tail handler failed on seq 1 (stream s): boom`]);
          await sub.close();
        }
      });

      it('close stops tails and later calls fail with StoreUnavailableError', async () => {
        const s = await open(() => {});
        await s.log.append({ stream: 's', data: enc('a') });
        const got: number[] = [];
        s.log.tail(0, (m) => {
          got.push(m.seq);
        });
        await waitFor(() => got.length === 1, 10_000, 'delivery');
        await s.close();
        await s.close(); // idempotent
        await expect(s.log.append({ stream: 's', data: enc('b') })).rejects.toBeInstanceOf(StoreUnavailableError);
      });
    });

    describe('checked appends (the log refuses batches that do not read back to themselves)', () => {
      const audit = { dbg: 'contract', timeMs: 1, host: 'h', actor: 'gateway' };
      const batchOf = (dbg: string, vmId: string) => encodeBatch([{ audit: { ...audit, dbg }, body: { type: 'VmRefreshed', vmId } }]);

      it('refuses a lone surrogate or bytes that are no batch, stores nothing, and then takes good batches', async () => {
        const s = withCheckedAppends(await fresh());
        const seen: number[] = [];
        const sub = s.log.tail(0, (m) => {
          seen.push(m.seq);
        });
        for (const data of [batchOf('\ud800', 'v'), batchOf('ok', 'v\udfff'), new Uint8Array([0x0a, 0x03, 0xed, 0xa0, 0x80]), enc('not a batch')]) {
          const err = await s.log.append({ stream: 'vm/v', data, expectedLastSeq: 0, messageId: 'bad' }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(UndecodableEventError);
          expect(err).toMatchObject({ code: 'UNDECODABLE_EVENT', stream: 'vm/v' });
        }
        expect(await s.log.head()).toBe(0);
        expect(await s.log.lastSeqOf('vm/v')).toBe(0);
        expect(await collect(s.log.read(0))).toEqual([]);
        // Nothing of the refused appends was remembered either (not even their message id).
        const good = batchOf('ok \u0000 \u{1F600}', 'v');
        const seq = await s.log.append({ stream: 'vm/v', data: good, expectedLastSeq: 0, messageId: 'bad' });
        expect(seq).toBeGreaterThan(0);
        await waitFor(() => seen.length === 1, 10_000, 'delivery of the good batch');
        expect(seen).toEqual([seq]);
        const [stored] = await collect(s.log.read(0));
        expect(decodeBatch(stored!.seq, stored!.data)[0]!.audit.dbg).toBe('ok \u0000 \u{1F600}');
        await sub.close();
      });
    });

    describe('snapshots', () => {
      it('put, get, keep the higher seq, delete', async () => {
        const { snapshots } = await fresh();
        expect(await snapshots.get('vm/1')).toBeUndefined();
        await snapshots.put('vm/1', { seq: 10, data: enc('ten') });
        let s = await snapshots.get('vm/1');
        expect(s?.seq).toBe(10);
        expect(dec(s!.data)).toBe('ten');
        await snapshots.put('vm/1', { seq: 5, data: enc('five') });
        s = await snapshots.get('vm/1');
        expect(s?.seq).toBe(10);
        expect(dec(s!.data)).toBe('ten');
        await snapshots.put('vm/1', { seq: 12, data: enc('twelve') });
        expect(dec((await snapshots.get('vm/1'))!.data)).toBe('twelve');
        await snapshots.put('vm/1', { seq: 12, data: enc('twelve again') });
        expect(dec((await snapshots.get('vm/1'))!.data)).toBe('twelve again');
        expect(await snapshots.get('vm/2')).toBeUndefined();
        await snapshots.delete('vm/1');
        expect(await snapshots.get('vm/1')).toBeUndefined();
        await snapshots.delete('vm/never');
        // after a delete any seq may be stored again
        await snapshots.put('vm/1', { seq: 3, data: enc('three') });
        expect((await snapshots.get('vm/1'))?.seq).toBe(3);
      });

      it('handles awkward keys, empty data and big seqs', async () => {
        const { snapshots } = await fresh();
        for (const [i, k] of AWKWARD_KEYS.entries()) await snapshots.put(k, { seq: i + 1, data: enc(k) });
        for (const [i, k] of AWKWARD_KEYS.entries()) {
          const s = await snapshots.get(k);
          expect(s?.seq).toBe(i + 1);
          expect(dec(s!.data)).toBe(k);
        }
        await snapshots.put('empty', { seq: Number.MAX_SAFE_INTEGER, data: new Uint8Array(0) });
        const e = await snapshots.get('empty');
        expect(e?.seq).toBe(Number.MAX_SAFE_INTEGER);
        expect(e?.data.byteLength).toBe(0);
      });

      it('racing puts keep the highest seq', async () => {
        const { snapshots } = await fresh();
        const seqs = Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) + 1);
        await Promise.all(seqs.map((seq) => snapshots.put('vm/race', { seq, data: enc(`${seq}`) })));
        const s = await snapshots.get('vm/race');
        expect(s?.seq).toBe(20);
        expect(dec(s!.data)).toBe('20');
      });

      it('stores a big snapshot (12 MiB) byte for byte; a lower seq does not replace it', async () => {
        const { snapshots } = await fresh();
        const big = randomBytes(12 * 1024 * 1024);
        await snapshots.put('fold', { seq: 5000, data: big });
        let s = await snapshots.get('fold');
        expect(s?.seq).toBe(5000);
        expect(s?.data.byteLength).toBe(big.byteLength);
        expect(Buffer.from(s!.data.buffer, s!.data.byteOffset, s!.data.byteLength).equals(big)).toBe(true);
        // an older one, big or small, is ignored
        await snapshots.put('fold', { seq: 4999, data: randomBytes(3 * 1024 * 1024) });
        await snapshots.put('fold', { seq: 4998, data: enc('small and old') });
        s = await snapshots.get('fold');
        expect(s?.seq).toBe(5000);
        expect(Buffer.from(s!.data).equals(big)).toBe(true);
        // big replaced by small, and small by big again
        await snapshots.put('fold', { seq: 5001, data: enc('small') });
        expect(dec((await snapshots.get('fold'))!.data)).toBe('small');
        const big2 = randomBytes(2 * 1024 * 1024 + 1);
        await snapshots.put('fold', { seq: 5002, data: big2 });
        expect(Buffer.from((await snapshots.get('fold'))!.data).equals(big2)).toBe(true);
        await snapshots.delete('fold');
        expect(await snapshots.get('fold')).toBeUndefined();
      }, 60_000);

      it('two concurrent big puts with different seqs leave the higher one', async () => {
        const { snapshots } = await fresh();
        const low = randomBytes(6 * 1024 * 1024);
        const high = randomBytes(6 * 1024 * 1024 + 7);
        await Promise.all([snapshots.put('fold', { seq: 10, data: low }), snapshots.put('fold', { seq: 11, data: high })]);
        let s = await snapshots.get('fold');
        expect(s?.seq).toBe(11);
        expect(Buffer.from(s!.data).equals(high)).toBe(true);
        // and the other way round, over an existing one
        const higher = randomBytes(5 * 1024 * 1024);
        await Promise.all([snapshots.put('fold', { seq: 13, data: higher }), snapshots.put('fold', { seq: 12, data: low })]);
        s = await snapshots.get('fold');
        expect(s?.seq).toBe(13);
        expect(Buffer.from(s!.data).equals(higher)).toBe(true);
      }, 60_000);
    });

    describe('command bus', () => {
      it('request/reply', async () => {
        const { bus } = await fresh();
        const sub = await bus.serve('host-1', async (req) => enc(`echo:${dec(req)}`));
        expect(dec(await bus.request('host-1', enc('hi')))).toBe('echo:hi');
        const many = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.request('host-1', enc(`${i}`))));
        expect(many.map(dec)).toEqual(Array.from({ length: 50 }, (_, i) => `echo:${i}`));
        await sub.close();
      });

      it('routes by address, awkward addresses included', async () => {
        const { bus } = await fresh();
        const subs = await Promise.all(
          ['host.a', 'host b', 'hôst/ç', 'host'].map((a) => bus.serve(a, async () => enc(a))),
        );
        for (const a of ['host.a', 'host b', 'hôst/ç', 'host']) expect(dec(await bus.request(a, enc('')))).toBe(a);
        await Promise.all(subs.map((s) => s.close()));
      });

      it('no responder', async () => {
        const { bus } = await fresh();
        const err = await bus.request('nobody', enc('x'), { timeoutMs: 2000 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NoResponderError);
        expect((err as NoResponderError).address).toBe('nobody');
        const sub = await bus.serve('gone', async () => enc('ok'));
        expect(dec(await bus.request('gone', enc('x')))).toBe('ok');
        await sub.close();
        await expect(bus.request('gone', enc('x'), { timeoutMs: 2000 })).rejects.toBeInstanceOf(NoResponderError);
      });

      it('timeout', async () => {
        const { bus } = await fresh();
        const sub = await bus.serve('slow', async () => {
          await sleep(1000);
          return enc('late');
        });
        const t0 = Date.now();
        const err = await bus.request('slow', enc('x'), { timeoutMs: 150 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BusTimeoutError);
        expect((err as BusTimeoutError).timeoutMs).toBe(150);
        expect(Date.now() - t0).toBeLessThan(900);
        await sub.close();
      });

      it('a failing handler gives the requester a BusRemoteError, and the next call works', async () => {
        const { bus } = await fresh();
        const sub = await bus.serve('h', async (req) => {
          if (dec(req) === 'bad') throw new Error('bad input');
          return enc('good');
        });
        const err = await bus.request('h', enc('bad')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BusRemoteError);
        expect((err as BusRemoteError).remoteMessage).toBe('bad input');
        expect(dec(await bus.request('h', enc('ok')))).toBe('good');
        await sub.close();
      });

      it('several servers of one address: each request is handled once', async () => {
        const { bus } = await fresh();
        let handled = 0;
        const h = async () => {
          handled++;
          return enc('ok');
        };
        const subs = [await bus.serve('q', h), await bus.serve('q', h)];
        await Promise.all(Array.from({ length: 20 }, () => bus.request('q', enc('x'))));
        expect(handled).toBe(20);
        await subs[0]!.close();
        expect(dec(await bus.request('q', enc('x')))).toBe('ok');
        await subs[1]!.close();
      });
    });
  });
}
