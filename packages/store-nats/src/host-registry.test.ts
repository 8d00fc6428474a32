/**
 * The host registry and the leases on a real NATS (never mocked): registrations with the server's
 * time as last_seen, and leases taken by compare-and-set, renewed, refused to others and handed on.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Stores } from '@xenops/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsNames, openNatsStores } from './index.js';

const NATS_URL = process.env.XENOPS_TEST_NATS ?? 'nats://127.0.0.1:4222';
const prefix = `hr${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

describe('NATS host registry and leases', () => {
  let one: Stores;
  let two: Stores;
  let admin: NatsConnection;
  beforeAll(async () => {
    admin = await connect({ servers: NATS_URL });
    one = await openNatsStores({ servers: NATS_URL, prefix });
    two = await openNatsStores({ servers: NATS_URL, prefix });
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    const jsm = await jetstreamManager(admin);
    const n = natsNames(prefix);
    for (const s of [n.stream, n.kvStream, n.objectStream, n.hostsStream, n.leasesStream]) await jsm.streams.delete(s).catch(() => {});
    await admin?.close();
  });

  it('a registration is listed by every process, with the server time of its last refresh', async () => {
    const before = Date.now();
    const reg = { id: 'h-1', backend: 'simulator', version: '0.1.0', startedMs: before - 1000, addresses: ['127.0.0.1:8440'], cpus: 4, memoryTotal: 2 ** 40 };
    await one.hosts.register(reg);
    await one.hosts.register({ ...reg, id: 'h.2/x' });
    const listed = (await two.hosts.list()).sort((a, b) => a.id.localeCompare(b.id));
    expect(listed.map((h) => h.id)).toEqual(['h-1', 'h.2/x']);
    expect(listed[0]).toMatchObject(reg);
    expect(Math.abs(listed[0]!.lastSeenMs - before)).toBeLessThan(5_000);
    const first = listed[0]!.lastSeenMs;
    await new Promise((r) => setTimeout(r, 20));
    await one.hosts.register(reg);
    const again = (await two.hosts.list()).find((h) => h.id === 'h-1')!;
    expect(again.lastSeenMs).toBeGreaterThan(first);
  });

  it('a lease: one holder at a time, renewed by its holder, refused to the other, handed on when released', async () => {
    expect(one.leases.ttlMs).toBe(10_000);
    expect(await one.leases.acquire('job', 'A')).toBe(true);
    expect(await two.leases.acquire('job', 'B')).toBe(false);
    expect(await one.leases.acquire('job', 'A')).toBe(true); // renewal
    expect(await two.leases.holder('job')).toBe('A');
    // Racing for a free lease: exactly one wins.
    const race = await Promise.all([one.leases.acquire('race', 'A'), two.leases.acquire('race', 'B')]);
    expect(race.filter(Boolean)).toHaveLength(1);
    // Only the holder can release it.
    await two.leases.release('job', 'B');
    expect(await one.leases.holder('job')).toBe('A');
    await one.leases.release('job', 'A');
    expect(await one.leases.holder('job')).toBeUndefined();
    expect(await two.leases.acquire('job', 'B')).toBe(true);
    expect(await one.leases.acquire('job', 'A')).toBe(false);
  });
});
