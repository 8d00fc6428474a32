/**
 * The contract every backend passes (the simulator now, QEMU next), as every store passes the
 * store contract: it performs each effect the engine decides and reports an observation the
 * engine's record accepts; it reports domain events it did not cause; `domains()` survives a
 * restart of the backend; `hostFacts()` reads as the IDL's Host.t; `close()` leaves nothing
 * running. The engine's own rules (core's atom-semantics) drive it: this suite is a small engine
 * loop that prepares atoms against a folded VM, has the backend perform them, and folds what it
 * observed, so a backend is checked against exactly what the agent will ask of it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  emptyVm,
  evolveVmAll,
  HostT,
  prepareAtom,
  recordEffect,
  VbdT,
  VifT,
  VmT,
  XenopsError,
  type Atom,
  type DomainEvent,
  type EffectKind,
  type EventBody,
  type GuestAction,
  type Observation,
  type VmAggregate,
  type VmConfig,
} from '@xenops/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, BackendHost, EffectContext, KnownDomain, VmView } from './backend.js';

export interface BackendContractOptions {
  /** A new backend, not started. */
  readonly create: () => Backend;
  /** A configuration the backend can start (a real backend needs something bootable). */
  readonly vmConfig?: (id: string) => VmConfig;
  /**
   * Makes the guest of a running VM power off, reboot or crash by itself. Default: the backend's
   * `debugTrigger` (backends with the `debugTriggers` capability); a real backend gives its way
   * (e.g. a command typed on the guest's console). Absent either way: those tests are skipped.
   */
  readonly causeGuestAction?: (backend: Backend, vm: VmView, action: 'reboot' | 'halt' | 'crash') => Promise<void>;
  /** Time for one test (real guests boot slowly). */
  readonly timeoutMs?: number;
  /** Effects the backend answers with Unimplemented (e.g. VM_run_script on QEMU); the suite checks it does. */
  readonly unimplemented?: readonly EffectKind[];
  /** Waits until a just unpaused guest can answer (a real guest boots); default: at once. */
  readonly waitForGuest?: (backend: Backend, vm: VmView) => Promise<void>;
  /** After each test, before its data dirs go: ends what the backend left running on purpose (real domains). */
  readonly cleanUp?: (dataDir: string) => Promise<void>;
}

const HOST = 'contract-host';

/** A minimal valid HVM configuration, bootable by the simulator. */
function simpleConfig(id: string): VmConfig {
  return VmT.decode(
    {
      id,
      name: id,
      ssidref: 0,
      xsdata: {},
      platformdata: {},
      bios_strings: {},
      ty: ['HVM', {}],
      suppress_spurious_page_faults: false,
      memory_static_max: 268435456,
      memory_dynamic_max: 268435456,
      memory_dynamic_min: 134217728,
      vcpu_max: 2,
      vcpus: 1,
      scheduler_params: { affinity: [] },
      on_crash: ['Shutdown'],
      on_shutdown: ['Shutdown'],
      on_reboot: ['Start'],
      pci_msitranslate: true,
      pci_power_mgmt: false,
    },
    'vm',
  );
}

const ctx: EffectContext = { signal: new AbortController().signal, cancelPoint: () => {}, markNonCancellable: () => {} };

/** One VM as the engine sees it while the suite drives the backend: the fold of what was recorded. */
class DrivenVm {
  vm: VmAggregate;
  private seq = 0;
  readonly observed: Observation[] = [];

  constructor(
    readonly backend: Backend,
    id: string,
    config: VmConfig,
  ) {
    this.vm = emptyVm(id);
    this.fold([{ type: 'VmAdded', vmId: id, config }]);
  }

  fold(events: readonly EventBody[]): void {
    if (events.length === 0) return;
    this.vm = evolveVmAll(this.vm, events.map((body) => ({ seq: ++this.seq, audit: { dbg: 'contract', timeMs: 0, host: HOST, actor: `vm/${this.vm.id}` }, body })));
  }

  /** Prepares `atom` as the engine would, has the backend perform its effect, and records what it observed. */
  async run(atom: Atom): Promise<readonly EventBody[]> {
    const step = prepareAtom(atom, this.vm);
    if (step instanceof XenopsError) throw new Error(`the engine refused ${atom.kind}: ${step.message}`);
    if (step.kind === 'facts') {
      this.fold(step.events);
      return step.events;
    }
    if (step.kind === 'wait') return [];
    const observation = await this.backend.perform(step.effect, ctx);
    this.observed.push(observation);
    const record = recordEffect(step.effect, observation, this.vm, { hostId: HOST, nowMs: Date.now() });
    if (record instanceof XenopsError) throw new Error(`${atom.kind}: the engine could not record ${JSON.stringify(observation)}: ${record.message}`);
    this.fold(record.events);
    return record.events;
  }

  async runAll(atoms: readonly Atom[]): Promise<void> {
    for (const atom of atoms) await this.run(atom);
  }

  addDevice(event: EventBody): void {
    this.fold([event]);
  }

  get known(): KnownDomain {
    const d = this.vm.domain!;
    return { vmId: this.vm.id, domid: d.domid, paused: d.paused, pluggedVbds: [...this.vm.devices.vbd].filter(([, e]) => e.plugged).map(([dev]) => dev) };
  }
}

export function describeBackendContract(name: string, opts: BackendContractOptions): void {
  const timeout = opts.timeoutMs ?? 20_000;
  const configOf = opts.vmConfig ?? simpleConfig;
  const causeGuestAction =
    opts.causeGuestAction ??
    ((backend: Backend, vm: VmView, action: GuestAction) => {
      if (!backend.debugTrigger) throw new Error('no debugTrigger');
      return backend.debugTrigger(action, [vm.id], vm);
    });

  describe(`backend contract: ${name}`, () => {
    const started: Backend[] = [];
    const dirs: string[] = [];
    afterEach(async () => {
      await Promise.all(started.splice(0).map((b) => b.close().catch(() => undefined)));
      for (const d of dirs) await opts.cleanUp?.(d);
      await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    });
    const dataDir = async () => {
      const d = await mkdtemp(join(tmpdir(), 'xenops-backend-contract-'));
      dirs.push(d);
      return d;
    };
    const start = async (host: Partial<BackendHost> = {}): Promise<Backend> => {
      const backend = opts.create();
      started.push(backend);
      await backend.start({ hostId: HOST, dataDir: host.dataDir ?? (await dataDir()), logger: () => {}, now: Date.now, lastDomid: 0, knownDomains: [], ...host });
      return backend;
    };
    const startAtoms: Atom[] = [
      { kind: 'VM_create' },
      { kind: 'VM_build', force: false },
      { kind: 'VBD_set_active', dev: 'xvda', active: true },
      { kind: 'VBD_epoch_begin', dev: 'xvda' },
      { kind: 'VBD_plug', dev: 'xvda', reserved: [] },
      { kind: 'VIF_set_active', dev: 'eth0', active: true },
      { kind: 'VIF_plug', dev: 'eth0' },
      { kind: 'VM_create_device_model', saveState: false },
      { kind: 'VM_mark_survivable' },
    ];
    const withDevices = async (driven: DrivenVm, dir: string) => {
      const id = driven.vm.id;
      await writeFile(join(dir, 'disk.img'), Buffer.alloc(1 << 20));
      driven.addDevice({ type: 'DeviceAdded', vmId: id, device: { kind: 'vbd', config: VbdT.decode({ id: [id, 'xvda'], mode: 'ReadWrite', ty: 'Disk', backend: ['Local', join(dir, 'disk.img')] }, 'vbd') } });
      driven.addDevice({ type: 'DeviceAdded', vmId: id, device: { kind: 'vif', config: VifT.decode({ id: [id, 'eth0'], position: 0, mac: '02:00:00:00:00:01' }, 'vif') } });
      return driven;
    };

    it(
      'starts with no domain, creates one with a fresh domid and consoles, and reports it in domains()',
      async () => {
        const backend = await start({ lastDomid: 41 });
        expect(await backend.domains()).toEqual([]);
        const a = new DrivenVm(backend, 'a', configOf('a'));
        const [created] = await a.run({ kind: 'VM_create' });
        expect(created).toMatchObject({ type: 'DomainCreated', vmId: 'a', host: HOST });
        expect(a.vm.domain!.domid).toBeGreaterThan(41);
        for (const c of a.vm.domain!.consoles) expect(Number.isInteger(c.port) && c.port >= 0).toBe(true);
        expect(await backend.domains()).toEqual([{ vmId: 'a', domid: a.vm.domain!.domid, paused: true }]);
        const b = new DrivenVm(backend, 'b', configOf('b'));
        await b.run({ kind: 'VM_create' });
        expect(b.vm.domain!.domid).toBeGreaterThan(a.vm.domain!.domid);
      },
      timeout,
    );

    it(
      'performs every effect of a VM\u2019s life, each observation accepted by the engine: start, live changes, devices, clean shutdown, suspend, resume, removal',
      async () => {
        const dir = await dataDir();
        const backend = await start({ dataDir: dir });
        const v = await withDevices(new DrivenVm(backend, 'life', configOf('life')), dir);
        await v.runAll(startAtoms);
        expect(v.vm.devices.vbd.get('xvda')).toMatchObject({ plugged: true, active: true, diskNumber: 0 });
        expect(v.vm.devices.vif.get('eth0')).toMatchObject({ plugged: true, active: true });
        await v.run({ kind: 'VM_unpause' });
        await opts.waitForGuest?.(backend, v.vm);
        expect(await backend.domains()).toEqual([{ vmId: 'life', domid: v.vm.domain!.domid, paused: false }]);
        await v.runAll([
          { kind: 'VM_pause' },
          { kind: 'VM_unpause' },
          { kind: 'VM_set_vcpus', vcpus: 2 },
          { kind: 'VM_set_shadow_multiplier', multiplier: 2 },
          { kind: 'VM_set_memory_dynamic_range', minimum: 134217728, maximum: 268435456 },
          { kind: 'VM_set_xsdata', xsdata: [['vm-data/k', 'v']] },
          { kind: 'VM_noop', name: 'VM.s3suspend' },
          { kind: 'VM_noop', name: 'VM.s3resume' },
          { kind: 'VM_noop', name: 'VM.request_rdp' },
          { kind: 'VIF_set', dev: 'eth0', field: 'carrier', valueJson: 'false' },
          { kind: 'VBD_unplug', dev: 'xvda', force: false },
          { kind: 'VBD_plug', dev: 'xvda', reserved: [] },
        ]);
        expect(v.vm.domain).toMatchObject({ vcpus: 2, shadowMultiplier: 2, paused: false });
        expect(v.observed.at(-1)).toEqual({ kind: 'done' });
        const script = v.backend.perform({ kind: 'VM_run_script', vmId: 'life', script: 'true' }, ctx);
        if (opts.unimplemented?.includes('VM_run_script')) await expect(script).rejects.toMatchObject({ value: ['Unimplemented', expect.any(String)] });
        else expect(await script).toMatchObject({ kind: 'script', rc: expect.any(Number), stdout: expect.any(String), stderr: expect.any(String) });

        // Suspend: the image is written, the domain goes, the resume reads back what it held.
        const image = join(dir, 'suspend.img');
        const [saved] = await v.run({ kind: 'VM_save', disk: ['Local', image] });
        expect(saved).toMatchObject({ type: 'SuspendImageSaved', image: { disk: ['Local', image] } });
        await v.runAll([
          { kind: 'VM_pause', bestEffort: true },
          { kind: 'VM_destroy_device_model' },
          { kind: 'VBD_unplug', dev: 'xvda', force: true },
          { kind: 'VIF_unplug', dev: 'eth0', force: true },
          { kind: 'VM_destroy' },
          { kind: 'VBD_epoch_end', dev: 'xvda' },
          { kind: 'VBD_set_active', dev: 'xvda', active: false },
          { kind: 'VIF_set_active', dev: 'eth0', active: false },
        ]);
        expect(await backend.domains()).toEqual([]);
        const first = (saved as Extract<EventBody, { type: 'SuspendImageSaved' }>).image.record;
        await v.run({ kind: 'VM_create' });
        const [restored] = await v.run({ kind: 'VM_restore', disk: ['Local', image] });
        expect(restored).toMatchObject({ type: 'DomainRestored', record: { vcpus: first.vcpus, memoryTarget: first.memoryTarget } });
        await v.runAll(startAtoms.slice(2));
        expect(v.vm.suspendImage).toBeUndefined(); // consumed at VM_mark_survivable

        // A clean shutdown the guest answers, then the teardown and the removal.
        await v.run({ kind: 'VM_unpause' });
        const [acked] = await v.run({ kind: 'VM_shutdown_domain', reason: 'poweroff', delay: 30 });
        expect(acked).toMatchObject({ type: 'DomainShutdownAcknowledged', reason: 'poweroff' });
        await v.runAll([{ kind: 'VBD_unplug', dev: 'xvda', force: true }, { kind: 'VIF_unplug', dev: 'eth0', force: true }, { kind: 'VM_destroy' }]);
        expect(await backend.domains()).toEqual([]);
        await v.run({ kind: 'VM_remove' });
        expect(v.vm.config).toBeUndefined();
      },
      timeout,
    );

    it(
      'domains() after a restart of the backend: the domains it was told of, and new domids above the last one',
      async () => {
        const dir = await dataDir();
        const first = await start({ dataDir: dir });
        const a = new DrivenVm(first, 'a', configOf('a'));
        const b = new DrivenVm(first, 'b', configOf('b'));
        await a.runAll([...startAtoms.filter((x) => !x.kind.startsWith('VBD') && !x.kind.startsWith('VIF')), { kind: 'VM_unpause' }]);
        await b.runAll(startAtoms.filter((x) => !x.kind.startsWith('VBD') && !x.kind.startsWith('VIF')));
        const before = [...(await first.domains())].sort((x, y) => x.domid - y.domid);
        expect(before.map((d) => [d.vmId, d.paused])).toEqual([
          ['a', false],
          ['b', true],
        ]);
        await first.close();
        const second = await start({ dataDir: dir, lastDomid: b.vm.domain!.domid, knownDomains: [a.known, b.known] });
        expect([...(await second.domains())].sort((x, y) => x.domid - y.domid)).toEqual(before);
        const c = new DrivenVm(second, 'c', configOf('c'));
        await c.run({ kind: 'VM_create' });
        expect(c.vm.domain!.domid).toBeGreaterThan(b.vm.domain!.domid);
      },
      timeout,
    );

    it(
      'hostFacts() reads as Host.t, with the total memory and console data',
      async () => {
        const facts = await (await start()).hostFacts();
        expect(() => HostT.encode(facts.host, 'xenopsd')).not.toThrow();
        expect(HostT.decode(HostT.encode(facts.host, 'xenopsd'), 'host')).toEqual(facts.host);
        expect(Number.isSafeInteger(facts.totalMemoryMib) && facts.totalMemoryMib > 0).toBe(true);
        expect(typeof facts.consoleData).toBe('string');
      },
      timeout,
    );

    it(
      'reports the guest\u2019s own power-off, reboot and crash as domain events, to every listener until it unsubscribes',
      async (t) => {
        const backend = await start();
        if (!opts.causeGuestAction && !backend.capabilities.debugTriggers) t.skip();
        const v = new DrivenVm(backend, 'g', configOf('g'));
        await v.runAll([...startAtoms.filter((x) => !x.kind.startsWith('VBD') && !x.kind.startsWith('VIF')), { kind: 'VM_unpause' }]);
        const seen: DomainEvent[] = [];
        const other: DomainEvent[] = [];
        const unsubscribe = backend.onDomainEvent((e) => seen.push(e));
        backend.onDomainEvent((e) => other.push(e));
        for (const action of ['reboot', 'halt', 'crash'] as const) {
          await causeGuestAction(backend, v.vm, action);
          await waitUntil(() => seen.some((e) => e.kind === 'guest' && e.action === action), timeout / 2, `a ${action} event`);
        }
        expect(seen.filter((e) => e.vmId === 'g').map((e) => (e.kind === 'guest' ? e.action : e.kind))).toEqual(expect.arrayContaining(['reboot', 'halt', 'crash']));
        unsubscribe();
        const count = seen.length;
        await causeGuestAction(backend, v.vm, 'reboot');
        await waitUntil(() => other.filter((e) => e.kind === 'guest' && e.action === 'reboot').length >= 2, timeout / 2, 'the second reboot');
        expect(seen.length).toBe(count);
      },
      timeout,
    );

    it(
      'close() leaves nothing running: no timer, handle or listener of its own',
      async () => {
        await new Promise((r) => setTimeout(r, 50)); // what earlier tests left settles first
        const resourcesBefore = activeResources();
        const backend = await start();
        const v = new DrivenVm(backend, 'c', configOf('c'));
        await v.runAll(startAtoms.filter((x) => !x.kind.startsWith('VBD') && !x.kind.startsWith('VIF')));
        const events: DomainEvent[] = [];
        backend.onDomainEvent((e) => events.push(e));
        await backend.close();
        started.splice(started.indexOf(backend), 1);
        await new Promise((r) => setTimeout(r, 50));
        const after = activeResources();
        for (const [kind, n] of Object.entries(after)) expect(n, kind).toBeLessThanOrEqual(resourcesBefore[kind] ?? 0);
        expect(events).toEqual([]);
      },
      timeout,
    );
  });
}

/** The kinds of resources keeping the event loop alive, counted (timers, handles, requests). */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
