/**
 * The NATS stores through an outage of their server (issue 17), on a private nats-server: while
 * it is down every operation fails at once with StoreUnavailableError, a read cut off by the drop
 * fails instead of looking complete, `writeProblem` says why, and once the server is back the
 * tail goes on by itself, without a gap or a duplicate.
 */
import { encodeBatch, StoreUnavailableError, Streams, type StoredMessage } from '@xenops/core';
import { openNatsStores, type NatsStores } from '@xenops/store-nats';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';

let nats: OwnNatsServer | undefined;
let stores: NatsStores | undefined;
afterAll(async () => {
  await stores?.close();
  await nats?.stop('SIGKILL');
});

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };
// 16 KiB each: the read below is cut off with most of the log still on its way (a read that had
// received every message before the drop would rightly complete).
const padding = 'x'.repeat(16 * 1024);
const message = (i: number) => ({
  stream: Streams.host(`h${i % 7}`),
  data: encodeBatch([{ audit, body: { type: 'HostSettingChanged', hostId: `h${i % 7}`, key: 'k', value: `${i}${padding}` } }]),
});

describe('NATS stores through an outage', () => {
  it('fail fast while down, a cut-off read fails, and the tail resumes without gap or duplicate', async () => {
    nats = await startOwnNatsServer();
    stores = await openNatsStores({ servers: nats.url, prefix: `outage_${Date.now().toString(36)}` });
    const { log } = stores;
    for (let i = 0; i < 3000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => log.append(message(i + j))));
    const seen: number[] = [];
    const tail = log.tail(0, (m: StoredMessage) => void seen.push(m.seq));
    await vi.waitFor(() => expect(seen.length).toBe(3000), { timeout: 10_000 });

    // A read in progress when the server dies.
    let read = 0;
    const reading = (async () => {
      for await (const m of log.read(0)) {
        void m;
        if (++read === 10) await nats!.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    await expect(reading).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(read).toBeLessThan(3000);

    const t0 = Date.now();
    await expect(log.append(message(3000))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(log.head()).rejects.toThrow(/NATS at nats:\/\/127\.0\.0\.1:\d+ is unreachable/);
    await expect(stores.bus.request('nobody', new Uint8Array(1))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(stores.snapshots.get('fold')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(await log.writeProblem!()).toMatch(/is unreachable/);

    await nats.start();
    await vi.waitFor(async () => expect(await log.writeProblem!()).toBeUndefined(), { timeout: 5_000 });
    const seq = await log.append(message(3001));
    expect(seq).toBe(3001);
    await vi.waitFor(() => expect(seen.length).toBe(3001), { timeout: 2_000 });
    expect(seen).toEqual(Array.from({ length: 3001 }, (_, i) => i + 1));
    await tail.close();
  }, 60_000);
});
