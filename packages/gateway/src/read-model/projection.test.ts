import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { encodeBatch, replayLog, StoreUnavailableError, Streams, VmT, type SnapshotStore, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Projection } from './projection.js';

const config = (id: string) =>
  VmT.decode(
    {
      id,
      ssidref: 0,
      xsdata: {},
      platformdata: {},
      bios_strings: {},
      ty: ['PV', { boot: ['Direct', {}] }],
      suppress_spurious_page_faults: false,
      memory_static_max: 1,
      memory_dynamic_max: 1,
      memory_dynamic_min: 1,
      vcpu_max: 1,
      vcpus: 1,
      scheduler_params: { affinity: [] },
      on_crash: [],
      on_shutdown: [],
      on_reboot: [],
      pci_msitranslate: false,
      pci_power_mgmt: false,
    },
    'vm',
  );

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };

/** 2,500 messages over 50 VMs: adds, task creations and removals. */
async function fill(stores: Stores): Promise<void> {
  const last = new Map<string, number>();
  for (let i = 0; i < 2500; i++) {
    const vmId = `vm${i % 50}`;
    const body =
      i % 5 === 4
        ? ({ type: 'VmRemoved', vmId } as const)
        : i % 5 === 0
          ? ({ type: 'VmAdded', vmId, config: config(vmId) } as const)
          : ({ type: 'TaskCreated', vmId, operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 } as const);
    const seq = await stores.log.append({ stream: Streams.vm(vmId), data: encodeBatch([{ audit, body }]), expectedLastSeq: last.get(vmId) ?? 0 });
    last.set(vmId, seq);
  }
}

describe('Projection', () => {
  let dir: string;
  let stores: Stores;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-projection-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    await fill(stores);
  });
  afterEach(async () => {
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers time-travel reads from checkpoints exactly as a replay from scratch', async () => {
    const projection = new Projection(stores.log);
    await projection.start();
    for (const seq of [1, 999, 1000, 1001, 1777, 2500]) {
      const replayed = await replayLog(stores.log, seq);
      const state = await projection.stateAt(seq);
      expect(isDeepStrictEqual(state.vms, replayed.vms), `vms at ${seq}`).toBe(true);
      expect(isDeepStrictEqual(state.tasks, replayed.tasks), `tasks at ${seq}`).toBe(true);
    }
    await projection.close();
  });

  it('reads back a message its tail skipped, so no write is acknowledged on a read model with a hole', async () => {
    // A transport that loses one delivery (what a reconnection may do): the log still has it.
    const lossy: typeof stores.log = Object.create(stores.log, {
      tail: {
        value: (after: number, handler: Parameters<typeof stores.log.tail>[1]) =>
          stores.log.tail(after, (m) => (m.seq === 2600 ? undefined : handler(m))),
      },
    });
    const lines: string[] = [];
    const projection = new Projection(lossy, { logger: (l) => lines.push(l) });
    await projection.start();
    // Written while the read model follows the tail (the start read the first 2,500 in one read).
    for (let i = 0; i < 200; i++) {
      await stores.log.append({ stream: Streams.vm(`late${i}`), data: encodeBatch([{ audit, body: { type: 'VmAdded', vmId: `late${i}`, config: config(`late${i}`) } }]), expectedLastSeq: 0 });
    }
    await projection.waitFor(2700);
    const replayed = await replayLog(stores.log);
    expect(isDeepStrictEqual(projection.vms, replayed.vms)).toBe(true);
    expect(isDeepStrictEqual(projection.tasks, replayed.tasks)).toBe(true);
    expect(lines.join('\n')).toMatch(/read back 1 message\(s\) the log tail skipped between seq 2599 and 2601/);
    await projection.close();
  });

  it('the start reads the log in one read, and a read cut short is finished by the tail', async () => {
    // A read that fails half way (the store went away): the tail takes over from where it stopped.
    const cut: typeof stores.log = Object.create(stores.log, {
      readPages: {
        value: (after: number, to?: number) =>
          (async function* () {
            for await (const page of stores.log.readPages(after, to)) {
              const at = page.findIndex((m) => m.seq === 1200);
              if (at < 0) yield page;
              else {
                if (at > 0) yield page.slice(0, at);
                throw new StoreUnavailableError('read failed: NATS is unreachable');
              }
            }
          })(),
      },
    });
    const lines: string[] = [];
    const projection = new Projection(cut, { logger: (l) => lines.push(l) });
    await projection.start();
    expect(projection.seq).toBe(2500);
    const replayed = await replayLog(stores.log);
    expect(isDeepStrictEqual(projection.vms, replayed.vms)).toBe(true);
    expect(isDeepStrictEqual(projection.tasks, replayed.tasks)).toBe(true);
    expect(lines.join('\n')).toMatch(/reading the log from seq 1199 stopped \(read failed: NATS is unreachable\); following its tail from there/);
    await projection.close();
  });

  it('the start folds a long log without snapshotting along the way, then saves one snapshot of the head', async () => {
    const puts: number[] = [];
    const counting: SnapshotStore = {
      get: (key) => stores.snapshots.get(key),
      delete: (key) => stores.snapshots.delete(key),
      close: () => Promise.resolve(),
      put: (key, snapshot) => {
        puts.push(snapshot.seq);
        return stores.snapshots.put(key, snapshot);
      },
    };
    const projection = new Projection(stores.log, { snapshots: counting, snapshotEvery: 1000 });
    await projection.start();
    await vi.waitFor(() => expect(puts).toEqual([2500]), { timeout: 2_000 });
    await projection.close();
  });

  it('a snapshot save that failed (store unreachable) is retried soon, not snapshotEvery messages later', async () => {
    let failNext = true;
    const puts: number[] = [];
    const flaky: SnapshotStore = {
      get: (key) => stores.snapshots.get(key),
      delete: (key) => stores.snapshots.delete(key),
      close: () => Promise.resolve(),
      async put(key, snapshot) {
        if (failNext) {
          failNext = false;
          throw new StoreUnavailableError('snapshot put: NATS is unreachable');
        }
        puts.push(snapshot.seq);
        return stores.snapshots.put(key, snapshot);
      },
    };
    const lines: string[] = [];
    const projection = new Projection(stores.log, { snapshots: flaky, snapshotEvery: 2500, snapshotRetryMs: 50, logger: (l) => lines.push(l) });
    await projection.start();
    // The save at 2,500 failed; with no further message, the retry saves the same seq.
    await vi.waitFor(() => expect(puts).toEqual([2500]), { timeout: 2_000 });
    expect(lines.join('\n')).toMatch(/cannot save a snapshot at seq 2500: snapshot put: NATS is unreachable/);
    expect((await stores.snapshots.get('fold'))?.seq).toBe(2500);
    await projection.close();
  });

  it('restarts from its snapshot and folds only what came after, to the same state', async () => {
    const first = new Projection(stores.log, { snapshots: stores.snapshots, snapshotEvery: 1000 });
    await first.start();
    await first.close(); // writes a final snapshot at the head
    expect((await stores.snapshots.get('fold'))?.seq).toBe(2500);

    await stores.log.append({ stream: Streams.vm('late'), data: encodeBatch([{ audit, body: { type: 'VmAdded', vmId: 'late', config: config('late') } }]) });
    const lines: string[] = [];
    const second = new Projection(stores.log, { snapshots: stores.snapshots, logger: (l) => lines.push(l) });
    await second.start();
    expect(lines.join('\n')).toMatch(/restored the snapshot at seq 2500/);
    const replayed = await replayLog(stores.log);
    expect(second.seq).toBe(replayed.seq);
    expect(isDeepStrictEqual(second.vms, replayed.vms)).toBe(true);
    expect(isDeepStrictEqual(second.tasks, replayed.tasks)).toBe(true);
    await second.close();
  });
});

describe('Projection on a log damaged on disk', () => {
  let dir: string;
  let stores: Stores;
  /** Bytes that are not an EventBatch. */
  const GARBAGE = Buffer.from('this is not an event batch');

  /** Overwrites messages in the closed store's file (what a disk or a stray tool may do), then reopens it. */
  async function damage(...seqs: number[]): Promise<void> {
    await stores.close();
    const db = new Database(join(dir, 'xenops.db'));
    for (const seq of seqs) db.prepare('UPDATE events SET data = ? WHERE seq = ?').run(GARBAGE, seq);
    db.close();
    stores = await openEmbeddedStores({ dataDir: dir });
  }

  const append = (vmId: string, body: Parameters<typeof encodeBatch>[0][number]['body']) =>
    stores.log.append({ stream: Streams.vm(vmId), data: encodeBatch([{ audit, body }]) });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-projection-damage-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    await append('a', { type: 'VmAdded', vmId: 'a', config: config('a') }); // 1
    await append('b', { type: 'VmAdded', vmId: 'b', config: config('b') }); // 2
    await append('a', { type: 'VmAdded', vmId: 'a', config: { ...config('a'), name: 'a-ignore' } }); // 3
    await append('b', { type: 'VmAdded', vmId: 'b', config: { ...config('b'), name: 'b-hang' } }); // 4
  });
  afterEach(async () => {
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts, lists the damage, quarantines the VM as it was before it and folds every other VM', async () => {
    await damage(3);
    const lines: string[] = [];
    const projection = new Projection(stores.log, { snapshots: stores.snapshots, logger: (l) => lines.push(l) });
    await projection.start();
    expect(projection.healthy).toBe(true);
    expect(projection.seq).toBe(4);
    expect(projection.damage).toEqual([{ seq: 3, stream: 'vm/a', vm: 'a', error: expect.stringMatching(/^undecodable event batch: /) }]);
    expect(projection.vms.get('a')).toMatchObject({ config: { name: config('a').name }, version: 1, quarantine: { seq: 3 } });
    expect(projection.vms.get('b')).toMatchObject({ config: { name: 'b-hang' }, version: 4 });
    expect(projection.vms.get('b')?.quarantine).toBeUndefined();
    expect(lines.join('\n')).toMatch(/the log is damaged at seq 3 \(vm\/a\): undecodable event batch: .*; VM a is quarantined/);
    // Later messages of the damaged stream change nothing; others go on.
    await append('a', { type: 'VmAdded', vmId: 'a', config: { ...config('a'), name: 'a-hang' } });
    await projection.waitFor(await append('b', { type: 'VmAdded', vmId: 'b', config: { ...config('b'), name: 'b-normal' } }));
    expect(projection.vms.get('a')).toMatchObject({ config: { name: config('a').name }, version: 1 });
    expect(projection.vms.get('b')?.config?.name).toBe('b-normal');
    // The same as a replay from scratch.
    const replayed = await replayLog(stores.log);
    expect(isDeepStrictEqual(projection.vms, replayed.vms)).toBe(true);
    expect(replayed.damage).toEqual(projection.damage);
    await projection.close();
  });

  it('keeps the damage and the quarantine in its snapshot, for a restart that never reads the damaged message', async () => {
    await damage(3);
    const first = new Projection(stores.log, { snapshots: stores.snapshots });
    await first.start();
    await first.close(); // a snapshot at seq 4
    // Retention: the damaged message is gone from the log, only the snapshot remembers it.
    await append('b', { type: 'VmRefreshed', vmId: 'b' });
    await stores.log.truncateBefore(5);
    const second = new Projection(stores.log, { snapshots: stores.snapshots });
    await second.start();
    expect(second.damage.map((d) => [d.seq, d.vm])).toEqual([[3, 'a']]);
    expect(second.vms.get('a')?.quarantine?.seq).toBe(3);
    await second.close();
  });

  it('finds a message damaged under its start snapshot by decoding the covered seqs once more, in the background', async () => {
    const first = new Projection(stores.log, { snapshots: stores.snapshots });
    await first.start();
    await first.close(); // a snapshot at seq 4, taken while every message was readable
    await damage(3);
    const lines: string[] = [];
    const second = new Projection(stores.log, { snapshots: stores.snapshots, logger: (l) => lines.push(l) });
    await second.start();
    for (let i = 0; i < 100 && second.damage.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(second.damage.map((d) => [d.seq, d.stream, d.vm])).toEqual([[3, 'vm/a', 'a']]);
    // The snapshot's state (intact when it was taken) stays, quarantined.
    expect(second.vms.get('a')).toMatchObject({ config: { name: 'a-ignore' }, quarantine: { seq: 3 } });
    expect(second.vms.get('b')?.quarantine).toBeUndefined();
    expect(lines.join('\n')).toMatch(/restored the snapshot at seq 4/);
    await second.close();
  });

  it('reports a damaged host stream message and leaves the host\u2019s other settings', async () => {
    const setting = (key: string, value: unknown) =>
      stores.log.append({ stream: Streams.host('h1'), data: encodeBatch([{ audit, body: { type: 'HostSettingChanged', hostId: 'h1', key, value } }]) });
    await setting('x', 1); // 5
    await setting('y', 2); // 6
    await damage(6);
    const projection = new Projection(stores.log);
    await projection.start();
    expect(projection.damage).toEqual([{ seq: 6, stream: 'host/h1', host: 'h1', error: expect.any(String) }]);
    expect(projection.hosts.get('h1')?.settings).toEqual([['x', 1]]);
    expect([...projection.vms.values()].every((vm) => vm.quarantine === undefined)).toBe(true);
    await projection.close();
  });
});
