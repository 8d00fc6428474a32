/**
 * A stream created by a release before subject layout 2 (subjects `<prefix>.ev.<one token>`, no
 * layout marker in its description) keeps working: its messages read back under their keys, new
 * appends use its layout (so per-subject concurrency checks still see the old messages), and a
 * new stream gets layout 2. Against the real NATS server (never mocked).
 */
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { collect } from '@xenops/core/testing';
import { ConcurrencyError, escapeSubjectToken } from '@xenops/core';
import { natsNames, openNatsStores } from './nats-stores.js';

const NATS_URL = process.env.XENOPS_TEST_NATS ?? 'nats://127.0.0.1:4222';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const prefixes: string[] = [];
let admin: NatsConnection | undefined;

async function adminConnection(): Promise<NatsConnection> {
  admin ??= await connect({ servers: NATS_URL, timeout: 3000 });
  return admin;
}

function newPrefix(): string {
  const p = `lay${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  prefixes.push(p);
  return p;
}

afterAll(async () => {
  if (!admin) return;
  const jsm = await jetstreamManager(admin);
  for (const p of prefixes) {
    const n = natsNames(p);
    for (const s of [n.stream, n.kvStream, n.objectStream]) await jsm.streams.delete(s).catch(() => {});
  }
  await admin.close();
});

/** The stream exactly as releases before layout 2 created it, with their messages in it. */
async function oldRelease(prefix: string, messages: Array<[key: string, data: string]>): Promise<void> {
  const nc = await adminConnection();
  const jsm = await jetstreamManager(nc);
  const n = natsNames(prefix);
  await jsm.streams.add({
    name: n.stream,
    subjects: [`${prefix}.ev.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(120_000),
    num_replicas: 1,
  });
  const js = jetstream(nc);
  for (const [key, data] of messages) await js.publish(`${prefix}.ev.${escapeSubjectToken(key)}`, enc(data));
}

describe('event subject layouts of existing streams', () => {
  it('a layout-1 stream keeps its layout: old messages read back, appends use it, concurrency checks still see them', async () => {
    const prefix = newPrefix();
    await oldRelease(prefix, [
      ['vm/a', 'a1'],
      ['task/1', 't1'],
      ['vm/b', 'b1'],
      ['vm/a', 'a2'],
    ]);
    const notices: string[] = [];
    const s = await openNatsStores({ servers: NATS_URL, prefix, log: (l) => notices.push(l) });
    try {
      expect(notices).toEqual([expect.stringMatching(new RegExp(`the stream ${prefix}_EVENTS uses event subject layout 1 .*cannot tell its VM streams`))]);
      expect((await collect(s.log.read(0))).map((m) => [m.seq, m.stream, dec(m.data)])).toEqual([
        [1, 'vm/a', 'a1'],
        [2, 'task/1', 't1'],
        [3, 'vm/b', 'b1'],
        [4, 'vm/a', 'a2'],
      ]);
      expect((await collect(s.log.readStream('vm/a'))).map((m) => dec(m.data))).toEqual(['a1', 'a2']);
      expect(await s.log.lastSeqOf('vm/a')).toBe(4);
      // a writer that knows only seq 1 of vm/a loses against the old message at seq 4
      await expect(s.log.append({ stream: 'vm/a', data: enc('stale'), expectedLastSeq: 1 })).rejects.toBeInstanceOf(ConcurrencyError);
      const seq = await s.log.append({ stream: 'vm/a', data: enc('a3'), expectedLastSeq: 4 });
      const jsm = await jetstreamManager(await adminConnection());
      expect((await jsm.streams.getMessage(natsNames(prefix).stream, { seq }))?.subject).toBe(`${prefix}.ev.vm%2Fa`);
      expect((await collect(s.log.readStream('vm/a'))).map((m) => dec(m.data))).toEqual(['a1', 'a2', 'a3']);
      // the description was left alone: the stream stays layout 1 for the next open too
      expect((await jsm.streams.info(natsNames(prefix).stream)).config.description).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('a new stream is created in layout 2, marked in its description, and reopened as such', async () => {
    const prefix = newPrefix();
    const notices: string[] = [];
    const s = await openNatsStores({ servers: NATS_URL, prefix, log: (l) => notices.push(l) });
    await s.log.append({ stream: 'vm/a', data: enc('x') });
    await s.close();
    const jsm = await jetstreamManager(await adminConnection());
    const n = natsNames(prefix);
    expect((await jsm.streams.info(n.stream)).config.description).toBe(`xenops event log, subject layout 2 (${prefix}.ev.<kind>.<id>)`);
    const again = await openNatsStores({ servers: NATS_URL, prefix, log: (l) => notices.push(l) });
    try {
      const seq = await again.log.append({ stream: 'vm/a', data: enc('y'), expectedLastSeq: 1 });
      expect((await jsm.streams.getMessage(n.stream, { seq }))?.subject).toBe(`${prefix}.ev.vm.a`);
      expect((await collect(again.log.readStream('vm/a'))).map((m) => dec(m.data))).toEqual(['x', 'y']);
    } finally {
      await again.close();
    }
    expect(notices).toEqual([]);
  });
});
