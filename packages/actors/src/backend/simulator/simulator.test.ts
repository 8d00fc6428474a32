import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyVm, VbdT, type Effect, type Observation, type VmAggregate } from '@xenops/core';
import { afterEach, describe, expect, it } from 'vitest';
import { vmConfig } from '../../testing/fixtures.js';
import type { BackendHost, EffectContext } from '../backend.js';
import { describeBackendContract } from '../contract.suite.js';
import { SimulatorBackend } from './simulator.js';

describeBackendContract('simulator', { create: () => new SimulatorBackend() });

describe('the simulator\u2019s own state (API.md §8.2, §8.3)', () => {
  const dirs: string[] = [];
  const backends: SimulatorBackend[] = [];
  afterEach(async () => {
    await Promise.all(backends.splice(0).map((b) => b.close()));
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  const dataDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'xenops-sim-'));
    dirs.push(d);
    return d;
  };
  const start = async (host: Partial<BackendHost> = {}) => {
    const b = new SimulatorBackend();
    backends.push(b);
    await b.start({ hostId: 'h', logger: () => {}, now: Date.now, lastDomid: 0, knownDomains: [], ...host });
    return b;
  };
  const ctx = (signal = new AbortController().signal): EffectContext & { points: number; noReturn: boolean } => {
    const c = {
      signal,
      points: 0,
      noReturn: false,
      cancelPoint: () => void c.points++,
      markNonCancellable: () => void (c.noReturn = true),
    };
    return c;
  };
  const view = (id: string, vm: Partial<VmAggregate> = {}): VmAggregate => ({ ...emptyVm(id), config: vmConfig(id), ...vm });
  const shutdown = (vmId: string, s: number): Effect => ({ kind: 'VM_shutdown_domain', vmId, reason: 'poweroff', ackTimeoutS: s, shutdownTimeoutS: s });
  const record = { hvm: true, domainType: 'Domain_HVM' as const, vcpus: 1, memoryTarget: 1, memoryLimit: 1, shadowMultiplier: 1, rtcTimeoffset: '', xsdata: [] };

  it('no-ack: ignore never acknowledges (after the acknowledgement window), hang never finishes; each wait is a cancellation point; normal answers at once', async () => {
    const b = await start();
    await b.debugTrigger('no-ack', ['i'], view('i'));
    await b.debugTrigger('no-ack', ['g', 'hang'], view('g'));
    const c = ctx();
    const t0 = Date.now();
    expect(await b.perform(shutdown('i', 0.05), c)).toEqual<Observation>({ kind: 'shutdown', outcome: 'no-ack' });
    expect(await b.perform(shutdown('g', 0.05), c)).toEqual<Observation>({ kind: 'shutdown', outcome: 'not-down' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(c.points).toBe(2);
    expect(await b.perform(shutdown('n', 5), c)).toEqual<Observation>({ kind: 'shutdown', outcome: 'down' });
    // A suspend: ignore waits for the acknowledgement, hang passes the point of no return first.
    const save = (vmId: string): Effect => ({ kind: 'VM_save', vmId, disk: ['VDI', 'sr/x'], record, ackTimeoutS: 0.02, timeoutS: 0.02 });
    expect(await b.perform(save('i'), c)).toEqual<Observation>({ kind: 'saved', outcome: 'no-ack' });
    expect(c.noReturn).toBe(false);
    expect(await b.perform(save('g'), c)).toEqual<Observation>({ kind: 'saved', outcome: 'not-done' });
    expect(c.noReturn).toBe(true);
    // A cancel ends a wait at once.
    const abort = new AbortController();
    const waiting = b.perform(shutdown('i', 30), ctx(abort.signal));
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    await expect(b.debugTrigger('no-ack', ['i', 'sulk'], view('i'))).rejects.toMatchObject({ value: ['Internal_error', expect.stringContaining('mode must be')] });
  });

  it('guest modes survive a restart (a file in the data dir, replaced whole); a removed VM forgets its mode', async () => {
    const dir = await dataDir();
    const first = await start({ dataDir: dir });
    await first.debugTrigger('no-ack', ['a', 'hang'], view('a'));
    await first.debugTrigger('no-ack', ['b'], view('b'));
    await first.debugTrigger('no-ack', ['c', 'ignore'], view('c'));
    await first.debugTrigger('no-ack', ['c', 'normal'], view('c'));
    const file = join(dir, 'simulator', 'guest-modes.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ a: 'hang', b: 'ignore' });
    await first.perform({ kind: 'VM_remove', vmId: 'b' }, ctx());
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ a: 'hang' });
    await first.close();
    const second = await start({ dataDir: dir });
    expect(await second.perform(shutdown('a', 0.01), ctx())).toMatchObject({ outcome: 'not-down' });
    expect(await second.perform(shutdown('b', 0.01), ctx())).toMatchObject({ outcome: 'down' });
  });

  it('a damaged guest-modes file is reported and ignored: every guest answers normally', async () => {
    const dir = await dataDir();
    await mkdir(join(dir, 'simulator'));
    await writeFile(join(dir, 'simulator', 'guest-modes.json'), '{"a": "hang", ');
    const lines: string[] = [];
    const b = await start({ dataDir: dir, logger: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/guest-modes\.json is damaged/);
    expect(await b.perform(shutdown('a', 0.01), ctx())).toMatchObject({ outcome: 'down' });
  });

  it('check-vbd-plug-ordering: the VBDs plugged into the domain since it was created, ReadWrite before ReadOnly; adopted at a restart', async () => {
    const vbd = (dev: string, mode: 'ReadWrite' | 'ReadOnly') => ({ config: VbdT.decode({ id: ['v', dev], mode, ty: mode === 'ReadOnly' ? 'CDROM' : 'Disk' }, 'vbd'), plugged: true, active: true });
    const devices = { ...emptyVm('v').devices, vbd: new Map([['disk', vbd('disk', 'ReadWrite')], ['cd', vbd('cd', 'ReadOnly')]]) };
    const b = await start();
    await b.perform({ kind: 'VM_create', vmId: 'v', config: vmConfig('v') }, ctx());
    const plug = (dev: string) => b.perform({ kind: 'VBD_plug', vmId: 'v', vbd: devices.vbd.get(dev)!.config, diskNumber: 0 }, ctx());
    await plug('disk');
    await plug('cd');
    await b.debugTrigger('check-vbd-plug-ordering', ['v'], view('v', { devices }));
    await b.perform({ kind: 'VM_destroy', vmId: 'v' }, ctx());
    await b.perform({ kind: 'VM_create', vmId: 'v', config: vmConfig('v') }, ctx());
    await plug('cd');
    await plug('disk');
    await expect(b.debugTrigger('check-vbd-plug-ordering', ['v'], view('v', { devices }))).rejects.toMatchObject({
      value: ['Internal_error', 'VBD plug ordering violated: cd before disk'],
    });
    // A restart adopts the domains the log knows, with their plugged VBDs.
    const again = await start({ knownDomains: [{ vmId: 'v', domid: 2, paused: true, pluggedVbds: ['disk', 'cd'] }], lastDomid: 2 });
    await again.debugTrigger('check-vbd-plug-ordering', ['v'], view('v', { devices }));
    await expect(again.debugTrigger('explode', ['v'], view('v'))).rejects.toMatchObject({ value: ['Unimplemented', 'explode'] });
  });
});
