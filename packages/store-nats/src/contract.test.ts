import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { BusPayloadTooLargeError, ConcurrencyError, StoreUnavailableError, type StoredMessage, type Stores } from '@xenops/core';
import { collect, describeStoreContract, waitFor } from '@xenops/core/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { kvKey, natsNames, openNatsStores } from './index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const NATS_URL = process.env.XENOPS_TEST_NATS ?? 'nats://127.0.0.1:4222';

const tempDirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'xenops-store-'));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// NATS (a real server; never mocked, never skipped)

let admin: NatsConnection | undefined;
async function adminConnection(): Promise<NatsConnection> {
  if (admin) return admin;
  try {
    admin = await connect({ servers: NATS_URL, waitOnFirstConnect: false, maxReconnectAttempts: 0, timeout: 3000 });
  } catch (err) {
    throw new Error(
      `NATS is not reachable at ${NATS_URL} (${(err as Error).message}). The NATS store tests need a real ` +
        `nats-server with JetStream: start one (nats-server -js) or set XENOPS_TEST_NATS.`,
    );
  }
  return admin;
}

function uniquePrefix(): string {
  return `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

async function deleteNamespace(prefix: string): Promise<void> {
  const nc = await adminConnection();
  const jsm = await jetstreamManager(nc);
  const names = natsNames(prefix);
  for (const stream of [names.stream, `KV_${names.kvBucket}`, `OBJ_${names.objectBucket}`, names.hostsStream, names.leasesStream]) {
    await jsm.streams.delete(stream).catch(() => {});
  }
}

const prefixes: string[] = [];
async function openNatsTest(prefix = uniquePrefix(), log?: (line: string) => void): Promise<Stores> {
  await adminConnection(); // a clear failure when the server is not there
  prefixes.push(prefix);
  return openNatsStores({ servers: NATS_URL, prefix, name: `xenops-test-${prefix}`, ...(log ? { log } : {}) });
}

afterAll(async () => {
  if (!admin) return;
  for (const p of prefixes) await deleteNamespace(p);
  await admin.drain();
});

describeStoreContract('nats', (log) => openNatsTest(undefined, log));

describe('nats store specifics', () => {
  const opened: Stores[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  const track = (s: Stores) => (opened.push(s), s);

  it('creates the stream with the documented configuration, and leaves an existing one alone', async () => {
    const prefix = uniquePrefix();
    const s = track(await openNatsTest(prefix));
    const jsm = await jetstreamManager(await adminConnection());
    const names = natsNames(prefix);
    const si = await jsm.streams.info(names.stream);
    expect(si.config.subjects).toEqual([`${prefix}.ev.>`]);
    expect(si.config.storage).toBe(StorageType.File);
    expect(si.config.duplicate_window).toBe(120_000_000_000);
    const kv = await jsm.streams.info(`KV_${names.kvBucket}`);
    expect(kv.config.max_msgs_per_subject).toBe(1);
    expect(kv.config.storage).toBe(StorageType.File);
    const obj = await jsm.streams.info(`OBJ_${names.objectBucket}`);
    expect(obj.config.subjects).toEqual([`$O.${names.objectBucket}.C.>`, `$O.${names.objectBucket}.M.>`]);
    expect(obj.config.storage).toBe(StorageType.File);

    // an existing stream is not modified
    await jsm.streams.update(names.stream, { ...si.config, description: 'hand-tuned', duplicate_window: 300_000_000_000 });
    const s2 = track(await openNatsTest(prefix));
    const si2 = await jsm.streams.info(names.stream);
    expect(si2.config.description).toBe('hand-tuned');
    expect(si2.config.duplicate_window).toBe(300_000_000_000);
    await s.log.append({ stream: 'x', data: enc('1') });
    expect(await s2.log.head()).toBe(1);
  });

  it('uses subjects <prefix>.ev.<escaped kind>.<escaped id> and <prefix>.cmd.<escaped address>', async () => {
    const prefix = uniquePrefix();
    const s = track(await openNatsTest(prefix));
    const nc = await adminConnection();
    await s.log.append({ stream: 'vm/a.b c', data: enc('x') });
    const jsm = await jetstreamManager(nc);
    const m = await jsm.streams.getMessage(natsNames(prefix).stream, { seq: 1 });
    expect(m?.subject).toBe(`${prefix}.ev.vm.a%2Eb%20c`);
    const sub = nc.subscribe(`${prefix}.cmd.host%2E1`, { callback: (_e, msg) => void msg.respond(enc('raw')) });
    await nc.flush();
    expect(dec(await s.bus.request('host.1', enc('')))).toBe('raw');
    sub.unsubscribe();
  });

  it('ordered consumers pass ONE filter as filter_subject (2.9 ignores/refuses filter_subjects)', async () => {
    const prefix = uniquePrefix();
    const s = track(await openNatsTest(prefix));
    await s.log.append({ stream: 'a', data: enc('a') });
    await s.log.append({ stream: 'b', data: enc('b') });
    const nc = await adminConnection();
    const js = jetstream(nc);
    const names = natsNames(prefix);
    const subject = names.eventSubject('b');
    const c = await js.consumers.get(names.stream, { filter_subjects: subject });
    const info = await c.info(true);
    expect(info.config.filter_subject).toBe(subject);
    expect(info.config.filter_subjects).toBeUndefined();
    await c.delete();
    // the array form needs 2.10: the client refuses it against this server instead of silently
    // delivering every subject (if this starts passing the server got upgraded: re-check).
    const version = nc.info?.version ?? '';
    if (/^2\.9\./.test(version)) {
      await expect(js.consumers.get(names.stream, { filter_subjects: [subject] })).rejects.toThrow(/filter_subjects/);
    }
    expect((await collect(s.log.readStream('b'))).map((m) => dec(m.data))).toEqual(['b']);
  });

  it('a read meeting a message of no stream key (published by hand into the stream) fails with it, pages too', async () => {
    const prefix = uniquePrefix();
    const s = track(await openNatsTest(prefix));
    for (let i = 0; i < 5; i++) await s.log.append({ stream: 'vm/a', data: enc(String(i)) });
    const js = jetstream(await adminConnection());
    await js.publish(`${prefix}.ev.vm.a.b`, enc('stray'));
    await s.log.append({ stream: 'vm/a', data: enc('after') });
    await expect(collect(s.log.read(0))).rejects.toThrow(/too many tokens/);
    await expect(collect(s.log.readPages(0))).rejects.toThrow(/too many tokens/);
    // Before it, the read is whole.
    expect((await collect(s.log.read(0, 5))).map((m) => dec(m.data))).toEqual(['0', '1', '2', '3', '4']);
  });

  it('two Stores on one prefix see each other and conflict correctly', async () => {
    const prefix = uniquePrefix();
    const a = track(await openNatsTest(prefix));
    const b = track(await openNatsTest(prefix));
    const seenByA: StoredMessage[] = [];
    const tail = a.log.tail(0, (m) => {
      seenByA.push(m);
    });
    const s1 = await b.log.append({ stream: 'vm/1', data: enc('from b'), expectedLastSeq: 0 });
    await waitFor(() => seenByA.length === 1, 10_000, 'A to see B’s append');
    expect(seenByA[0]).toMatchObject({ seq: s1, stream: 'vm/1' });
    expect(await a.log.lastSeqOf('vm/1')).toBe(s1);
    // both decide on the same state; one wins
    const results = await Promise.allSettled([
      a.log.append({ stream: 'vm/1', data: enc('a wins?'), expectedLastSeq: s1 }),
      b.log.append({ stream: 'vm/1', data: enc('b wins?'), expectedLastSeq: s1 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toBeInstanceOf(ConcurrencyError);
    // a retried publish with the same id from the other instance is deduplicated
    const d1 = await a.log.append({ stream: 'vm/2', data: enc('d'), messageId: 'shared-id' });
    expect(await b.log.append({ stream: 'vm/2', data: enc('d'), messageId: 'shared-id' })).toBe(d1);
    await waitFor(() => seenByA.length === 3, 10_000, 'A to see all appends');
    expect(seenByA.map((m) => m.seq)).toEqual([1, 2, 3]);
    // snapshots and the bus are shared too
    await a.snapshots.put('vm/1', { seq: 2, data: enc('snap') });
    expect((await b.snapshots.get('vm/1'))?.seq).toBe(2);
    await b.snapshots.put('vm/1', { seq: 1, data: enc('older') });
    expect(dec((await a.snapshots.get('vm/1'))!.data)).toBe('snap');
    const srv = await a.bus.serve('host-a', async (r) => enc(`a got ${dec(r)}`));
    expect(dec(await b.bus.request('host-a', enc('x')))).toBe('a got x');
    await srv.close();
    await tail.close();
  });

  it('refuses a request bigger than the server\'s max_payload with a typed error, before sending it', async () => {
    const s = track(await openNatsTest(uniquePrefix()));
    let served = 0;
    const srv = await s.bus.serve('host-big', async () => {
      served++;
      return enc('ok');
    });
    const err = await s.bus.request('host-big', new Uint8Array(2 * 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusPayloadTooLargeError);
    expect(err).toMatchObject({ address: 'host-big', size: 2 * 1024 * 1024, maxPayload: 1024 * 1024 });
    expect(dec(await s.bus.request('host-big', enc('small')))).toBe('ok');
    expect(served).toBe(1);
    await srv.close();
  });

  /** The messages of the object store of `prefix`: chunks and metadata subjects with their counts. */
  async function objectStoreContents(prefix: string): Promise<{ messages: number; metas: string[] }> {
    const jsm = await jetstreamManager(await adminConnection());
    const bucket = natsNames(prefix).objectBucket;
    const si = await jsm.streams.info(`OBJ_${bucket}`, { subjects_filter: `$O.${bucket}.M.>` });
    return { messages: si.state.messages, metas: Object.keys(si.state.subjects ?? {}) };
  }

  it('reads a snapshot in the single-value format of earlier releases, and replaces it', async () => {
    const prefix = uniquePrefix();
    const s = track(await openNatsTest(prefix));
    const kv = await new Kvm(jetstream(await adminConnection())).open(natsNames(prefix).kvBucket);
    // 8 bytes big-endian seq, then the data: what every earlier release wrote
    const old = (seq: number, data: Uint8Array) => {
      const v = new Uint8Array(8 + data.byteLength);
      new DataView(v.buffer).setBigUint64(0, BigInt(seq));
      v.set(data, 8);
      return v;
    };
    const data = randomBytes(200_000); // bigger than what is now kept inline, yet one message
    await kv.put(kvKey('fold'), old(4242, data));
    await kv.put(kvKey('marks'), old(7, enc('{"a":1}')));
    const f = await s.snapshots.get('fold');
    expect(f?.seq).toBe(4242);
    expect(Buffer.from(f!.data).equals(data)).toBe(true);
    const m = await s.snapshots.get('marks');
    expect(m?.seq).toBe(7);
    expect(dec(m!.data)).toBe('{"a":1}');
    // the usual rules apply to it
    await s.snapshots.put('fold', { seq: 4241, data: enc('older') });
    expect((await s.snapshots.get('fold'))?.seq).toBe(4242);
    const big = randomBytes(3 * 1024 * 1024);
    await s.snapshots.put('fold', { seq: 4243, data: big });
    expect(Buffer.from((await s.snapshots.get('fold'))!.data).equals(big)).toBe(true);
    await s.snapshots.delete('marks');
    expect(await s.snapshots.get('marks')).toBeUndefined();
  });

  it('keeps big snapshots in the object store and leaves no object behind when they are replaced or deleted', async () => {
    const prefix = uniquePrefix();
    const s = track(await openNatsTest(prefix));
    const bucket = natsNames(prefix).objectBucket;
    await s.snapshots.put('small', { seq: 1, data: enc('inline') });
    expect((await objectStoreContents(prefix)).messages).toBe(0);
    const a = randomBytes(40 * 1024 * 1024);
    await s.snapshots.put('fold', { seq: 1, data: a });
    let c = await objectStoreContents(prefix);
    expect(c.metas).toHaveLength(1);
    expect(c.messages).toBe(1 + 80); // the metadata and 80 chunks of 512 KiB
    expect(Buffer.from((await s.snapshots.get('fold'))!.data).equals(a)).toBe(true);
    // a second Stores instance sees it
    const other = track(await openNatsTest(prefix));
    expect((await other.snapshots.get('fold'))?.data.byteLength).toBe(a.byteLength);
    // replaced: the old object goes (no tombstone either)
    await s.snapshots.put('fold', { seq: 2, data: randomBytes(2 * 1024 * 1024) });
    c = await objectStoreContents(prefix);
    expect(c.metas).toHaveLength(1);
    expect(c.messages).toBe(1 + 4);
    // an ignored (older) put leaves nothing
    await s.snapshots.put('fold', { seq: 1, data: randomBytes(2 * 1024 * 1024) });
    expect((await objectStoreContents(prefix)).messages).toBe(1 + 4);
    // a racing loser leaves nothing
    await Promise.all([
      s.snapshots.put('fold', { seq: 3, data: randomBytes(1024 * 1024) }),
      other.snapshots.put('fold', { seq: 4, data: randomBytes(1024 * 1024) }),
    ]);
    expect((await s.snapshots.get('fold'))?.seq).toBe(4);
    expect((await objectStoreContents(prefix)).messages).toBe(1 + 2);
    // replaced by a small one, then deleted
    await s.snapshots.put('fold', { seq: 5, data: enc('small now') });
    expect((await objectStoreContents(prefix)).messages).toBe(0);
    await s.snapshots.put('fold', { seq: 6, data: randomBytes(1024 * 1024) });
    await s.snapshots.delete('fold');
    expect(await s.snapshots.get('fold')).toBeUndefined();
    expect((await objectStoreContents(prefix)).messages).toBe(0);

    // Leftovers of a writer that died: a tombstone is swept at the next big put of the key; an
    // unreferenced recent object (maybe a live writer's, not yet committed) and other keys' stay.
    const os = await new Objm(jetstream(await adminConnection())).open(bucket);
    await os.putBlob({ name: `${kvKey('fold')}@9.dead` }, randomBytes(1000));
    await os.delete(`${kvKey('fold')}@9.dead`);
    await os.putBlob({ name: `${kvKey('fold')}@10.inflight` }, randomBytes(1000));
    await os.putBlob({ name: `${kvKey('fold2')}@1.other` }, randomBytes(1000));
    await s.snapshots.put('fold', { seq: 11, data: randomBytes(1024 * 1024) });
    const names = (await os.list()).map((i) => i.name).sort();
    expect(names).toHaveLength(3);
    expect(names).toContain(`${kvKey('fold')}@10.inflight`);
    expect(names).toContain(`${kvKey('fold2')}@1.other`);
    expect((await objectStoreContents(prefix)).metas).toHaveLength(3);
  }, 60_000);

  it('a reader racing writers that replace a big snapshot always gets a whole, matching snapshot', async () => {
    const prefix = uniquePrefix();
    const writer = track(await openNatsTest(prefix));
    const reader = track(await openNatsTest(prefix));
    // data whose every byte is its seq, so a torn or mismatched read shows
    const dataOf = (seq: number) => new Uint8Array(3 * 1024 * 1024 + seq).fill(seq);
    await writer.snapshots.put('fold', { seq: 1, data: dataOf(1) });
    let writing = true;
    const writes = (async () => {
      for (let seq = 2; seq <= 12; seq++) await writer.snapshots.put('fold', { seq, data: dataOf(seq) });
      writing = false;
    })();
    let reads = 0;
    let lastSeq = 0;
    while (writing) {
      const s = await reader.snapshots.get('fold');
      expect(s).toBeDefined();
      expect(s!.seq).toBeGreaterThanOrEqual(lastSeq);
      lastSeq = s!.seq;
      expect(s!.data.byteLength).toBe(3 * 1024 * 1024 + s!.seq);
      expect(s!.data.every((b) => b === s!.seq)).toBe(true);
      reads++;
    }
    await writes;
    expect(reads).toBeGreaterThan(0);
    expect((await reader.snapshots.get('fold'))?.seq).toBe(12);
  }, 60_000);

  it('fails fast with StoreUnavailableError when no server listens at open', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const err = await openNatsStores({ servers: `nats://127.0.0.1:${port}`, prefix: uniquePrefix() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('an append after the server went away fails with StoreUnavailableError instead of hanging', async () => {
    const port = await freePort();
    const storeDir = tempDir();
    const server = await startNatsServer(port, storeDir);
    let s: Stores | undefined;
    try {
      s = await openNatsStores({ servers: `nats://127.0.0.1:${port}`, prefix: 'gone' });
      expect(await s.log.append({ stream: 's', data: enc('before') })).toBe(1);
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
      const t0 = Date.now();
      const err = await Promise.race([
        s.log.append({ stream: 's', data: enc('after'), messageId: 'retry-me' }).catch((e: unknown) => e),
        new Promise((r) => setTimeout(() => r(new Error('append still pending after 15 s')), 15_000)),
      ]);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - t0).toBeLessThan(10_000);
      await expect(s.log.head()).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      const t0 = Date.now();
      await s?.close();
      expect(Date.now() - t0).toBeLessThan(8000);
    }
  }, 40_000);
  it('survives a NATS server restart: appends work again and tails resume without gaps', async () => {
    const port = await freePort();
    const storeDir = tempDir();
    let server = await startNatsServer(port, storeDir);
    let s: Stores | undefined;
    try {
      s = await openNatsStores({ servers: `nats://127.0.0.1:${port}`, prefix: 'restart' });
      const got: number[] = [];
      const tail = s.log.tail(0, (m) => {
        got.push(m.seq);
      });
      await s.log.append({ stream: 's', data: enc('1') });
      await waitFor(() => got.length === 1, 10_000, 'first delivery');
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      server = await startNatsServer(port, storeDir);
      // appends fail while the client reconnects, then succeed (retry with the same id)
      const deadline = Date.now() + 20_000;
      let seq = 0;
      while (!seq) {
        try {
          seq = await s.log.append({ stream: 's', data: enc('2'), messageId: 'after-restart' });
        } catch (err) {
          expect(err).toBeInstanceOf(StoreUnavailableError);
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      expect(seq).toBe(2);
      await s.log.append({ stream: 's', data: enc('3') });
      await waitFor(() => got.length === 3, 30_000, `deliveries after the restart (got ${got})`);
      expect(got).toEqual([1, 2, 3]);
      await tail.close();
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      await s?.close();
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A private, real nats-server (the test kills it); the binary is the one this machine runs. */
async function startNatsServer(port: number, storeDir: string): Promise<ChildProcess> {
  const bin = process.env.XENOPS_TEST_NATS_SERVER_BIN ?? 'nats-server';
  const child = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: 'ignore' });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    child.once('spawn', () => resolve());
  });
  await spawned;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const nc = await connect({ servers: `nats://127.0.0.1:${port}`, maxReconnectAttempts: 0 });
      await nc.close();
      return child;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nats-server on port ${port} did not come up: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
