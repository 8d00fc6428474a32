import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import type { LogEvent } from '../events/event.js';
import {
  decodeFoldSnapshot,
  encodeFoldSnapshot,
  FOLD_SNAPSHOT_SCHEMA,
  type FoldSnapshot,
} from './fold-snapshot.js';
import { emptyVm, evolveVm } from './vm-aggregate.js';

describe('decodeFoldSnapshot', () => {
  it('gives VMs without devices the shared empty tables, and keeps the devices of the others', async () => {
    const withDisk = evolveVm(emptyVm('b'), {
      seq: 1,
      audit: { dbg: 't', timeMs: 0, host: 'h', actor: 'a' },
      body: { type: 'DeviceAdded', vmId: 'b', device: { kind: 'vbd', config: { id: ['b', 'xvda'] } } },
    } as unknown as LogEvent);
    const snap: FoldSnapshot = { seq: 1, vms: [emptyVm('a'), withDisk], tasks: [], domids: [], hosts: [], observers: {} };
    const decoded = (await decodeFoldSnapshot(await encodeFoldSnapshot(snap)))!;
    const [a, b] = decoded.vms;
    // The clone made new Maps; an empty set is swapped for the one every fold shares.
    expect(a!.devices).toBe(emptyVm('x').devices);
    expect([...b!.devices.vbd.keys()]).toEqual(['xvda']);
    expect(b!.devices).not.toBe(emptyVm('x').devices);
  });
});

describe('fold snapshot encoding', () => {
  const manyVms = (n: number): FoldSnapshot => ({
    seq: n,
    vms: Array.from({ length: n }, (_, i) => ({ ...emptyVm(`vm-${i}`), version: i + 1 })),
    tasks: [],
    domids: [['h', 3]],
    hosts: [],
    observers: { updates: { ids: ['a', 'b'] } },
  });

  it('is compressed, and decodes to what was encoded', async () => {
    const snap = manyVms(500);
    const data = await encodeFoldSnapshot(snap);
    expect([data[0], data[1]]).toEqual([0x1f, 0x8b]);
    expect(data.length).toBeLessThan(serialize({ schema: FOLD_SNAPSHOT_SCHEMA, ...snap }).length / 4);
    expect(await decodeFoldSnapshot(data)).toEqual({ schema: FOLD_SNAPSHOT_SCHEMA, ...snap });
  });

  it('still reads a snapshot written before compression (a bare structured clone)', async () => {
    const snap = manyVms(3);
    expect(await decodeFoldSnapshot(serialize({ schema: FOLD_SNAPSHOT_SCHEMA, ...snap }))).toEqual({ schema: FOLD_SNAPSHOT_SCHEMA, ...snap });
  });

  it('gives undefined, not an exception, for corrupt data and another schema', async () => {
    const data = await encodeFoldSnapshot(manyVms(3));
    const corrupt = Uint8Array.from(data);
    corrupt.fill(0, 10, 40);
    expect(await decodeFoldSnapshot(corrupt)).toBeUndefined();
    expect(await decodeFoldSnapshot(new TextEncoder().encode('not a snapshot'))).toBeUndefined();
    expect(await decodeFoldSnapshot(serialize({ ...manyVms(1), schema: FOLD_SNAPSHOT_SCHEMA + 1 }))).toBeUndefined();
  });
});
