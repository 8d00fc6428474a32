import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { encodeBatch, openEmbeddedStores, replayLog, Streams, VmT, type Stores } from '@xenops/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
          stores.log.tail(after, (m) => (m.seq === 1500 ? undefined : handler(m))),
      },
    });
    const lines: string[] = [];
    const projection = new Projection(lossy, { logger: (l) => lines.push(l) });
    await projection.start();
    const replayed = await replayLog(stores.log);
    expect(isDeepStrictEqual(projection.vms, replayed.vms)).toBe(true);
    expect(isDeepStrictEqual(projection.tasks, replayed.tasks)).toBe(true);
    expect(lines.join('\n')).toMatch(/read back 1 message\(s\) the log tail skipped between seq 1499 and 1501/);
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
