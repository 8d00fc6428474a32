/**
 * Schema evolution (issue 5 item 6; ARCHITECTURE.md "old events must still decode"): a committed
 * log written by version 1 of the event schema is decoded and folded by THIS version, and replayed
 * through a real xenopsd process, and must give the state version 1 reported.
 *
 * !!! The fixture (test/fixtures/log-v1.jsonl + log-v1.expected.json) is written by version 1 and
 * !!! must NEVER be regenerated to make a failing test pass. A failure here means a schema change
 * !!! broke old events (a renumbered or retyped protobuf field, a changed JSON payload, a fold that
 * !!! reads an old event differently). Fix the decoder/fold; when a new schema version ships, add a
 * !!! log-v2 fixture next to this one (scripts/make-fixture-log.mjs) and keep v1.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBatch, foldMessage, powerStateOf, type TaskRecord, type VmAggregate } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { httpRequest, X, type XenopsdTask } from '../support/rpc.js';
import { makeTempDir, REPO_ROOT, spawnXenopsd, stopAll, type Xenopsd } from '../support/xenopsd.js';

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');

interface FixtureMessage {
  seq: number;
  stream: string;
  data: string;
}
type DeviceKindName = 'VBD' | 'VIF' | 'PCI' | 'VGPU' | 'VUSB';
interface ExpectedVm {
  name: string;
  power_state: string;
  domids: number[];
  devices: Record<DeviceKindName, Record<string, { plugged: boolean }>>;
}
interface Expected {
  schema: number;
  hostId: string;
  messages: number;
  events: number;
  eventTypes: Record<string, number>;
  vms: Record<string, ExpectedVm>;
  tasks: { byStatus: Record<string, number>; ids: Record<string, string> };
  head: number;
}

const messages: FixtureMessage[] = readFileSync(path.join(FIXTURES, 'log-v1.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as FixtureMessage);
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'log-v1.expected.json'), 'utf8')) as Expected;
const bytes = (m: FixtureMessage) => new Uint8Array(Buffer.from(m.data, 'base64'));

const KINDS: readonly DeviceKindName[] = ['VBD', 'VIF', 'PCI', 'VGPU', 'VUSB'];
const STATUS: Record<TaskRecord['status'], string> = { pending: 'Pending', completed: 'Completed', failed: 'Failed' };

afterAll(stopAll);

describe('log schema v1 fixture', () => {
  it('is the committed fixture (contiguous seqs, the counts it was written with)', () => {
    expect(expected.schema).toBe(1);
    expect(messages).toHaveLength(expected.messages);
    messages.forEach((m, i) => expect(m.seq, `line ${i + 1}`).toBe(i + 1));
    expect(expected.head).toBe(messages.length);
  });

  it('every message decodes, to the same event types as version 1 wrote', () => {
    const counts: Record<string, number> = {};
    let events = 0;
    for (const m of messages) {
      // decodeBatch skips event types it does not know: a renumbered field would vanish silently,
      // so the per-type counts are compared too.
      for (const e of decodeBatch(m.seq, bytes(m))) {
        expect(e.seq).toBe(m.seq);
        counts[e.body.type] = (counts[e.body.type] ?? 0) + 1;
        events++;
      }
    }
    expect(counts).toEqual(expected.eventTypes);
    expect(events).toBe(expected.events);
  });

  it('folds (foldMessage, as replayLog does) to the state version 1 reported', () => {
    const state = { vms: new Map<string, VmAggregate>(), tasks: new Map<string, TaskRecord>() };
    for (const m of messages) foldMessage(state, m.stream, m.seq, bytes(m));

    const vms: Record<string, ExpectedVm> = {};
    for (const [id, vm] of state.vms) {
      if (vm.config === undefined) continue; // not registered (VM.list shows registered VMs only)
      const devices = {} as ExpectedVm['devices'];
      for (const k of KINDS) {
        devices[k] = Object.fromEntries([...vm.devices[k.toLowerCase() as keyof VmAggregate['devices']]].map(([dev, e]) => [dev, { plugged: e.plugged }]));
      }
      vms[id] = { name: vm.config.name, power_state: powerStateOf(vm), domids: vm.domain ? [vm.domain.domid] : [], devices };
    }
    expect(vms).toEqual(expected.vms);

    const ids = Object.fromEntries([...state.tasks.values()].map((t) => [t.id, STATUS[t.status]]));
    expect(ids).toEqual(expected.tasks.ids);
    const byStatus: Record<string, number> = { Pending: 0, Completed: 0, Failed: 0 };
    for (const s of Object.values(ids)) byStatus[s] = (byStatus[s] ?? 0) + 1;
    expect(byStatus).toEqual(expected.tasks.byStatus);
  });
});

describe('log schema v1 fixture replayed by a real xenopsd', () => {
  let svc: Xenopsd;

  beforeAll(async () => {
    // Write the messages into a fresh embedded store, in order, so every seq matches.
    const dataDir = await makeTempDir('xschema');
    const stores = await openEmbeddedStores({ dataDir });
    try {
      for (const m of messages) {
        const seq = await stores.log.append({ stream: m.stream, data: bytes(m) });
        if (seq !== m.seq) throw new Error(`fixture message ${m.seq} was stored at seq ${seq}`);
      }
    } finally {
      await stores.close();
    }
    svc = await spawnXenopsd({ mode: 'embedded', dataDir, hostId: expected.hostId });
  });

  it('VM.list, device lists and Task.list match version 1', async () => {
    const c = svc.client();
    const list = await c.ok<[{ id: string; name: string }, { power_state: string; domids: number[] }][]>('VM.list', X());
    const vms: Record<string, ExpectedVm> = {};
    for (const [cfg, st] of list) {
      const devices = {} as ExpectedVm['devices'];
      for (const k of KINDS) {
        const devs = await c.ok<[{ id: [string, string] }, { plugged?: boolean }][]>(`${k}.list`, X({ id: cfg.id }));
        devices[k] = Object.fromEntries(devs.map(([d, s]) => [d.id[1], { plugged: s.plugged === true }]));
      }
      vms[cfg.id] = { name: cfg.name, power_state: st.power_state, domids: st.domids, devices };
    }
    expect(vms).toEqual(expected.vms);

    const tasks = await c.ok<XenopsdTask[]>('Task.list', X());
    expect(Object.fromEntries(tasks.map((t) => [t.id, t.state[0]]))).toEqual(expected.tasks.ids);
  });

  it('the restarted service reports the fixture head, verifies clean and still works', async () => {
    const c = svc.client();
    // Nothing to reconcile: every task had ended, so the agent appends nothing on start.
    expect(await c.ok<number>('UPDATES.last_id', X())).toBe(expected.head);
    const v = JSON.parse((await httpRequest({ url: svc.url }, { method: 'GET', path: '/verify' })).body) as { ok: boolean; differences: string[]; seq: number };
    expect(v.differences).toEqual([]);
    expect(v).toMatchObject({ ok: true, seq: expected.head });
    // New work on an old VM: ids continue after the fixture's head.
    const halted = Object.entries(expected.vms).find(([, v]) => v.power_state === 'Halted')![0];
    const t = await c.ok<string>('VM.start', X({ id: halted, paused: false }));
    expect(Number(t)).toBeGreaterThan(expected.head);
  });
});
