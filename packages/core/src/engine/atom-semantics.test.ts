/**
 * The atom rules of API.md §7.3, §7.6 and §8.1 that the engine owns (xenopsd's perform_atomic):
 * what each atom requires of the VM, which effect carries it out, which facts record what the
 * backend observed. Each rule the simulator used to enforce keeps a test here.
 */
import { describe, expect, it } from 'vitest';
import { XenopsError } from '../errors.js';
import type { EventBody } from '../events/event.js';
import { MetadataT, VbdT, VifT, wireToJson } from '../idl/index.js';
import { testDomainCreated, testVm, testVmConfig } from '../testing/vms.js';
import type { VmAggregate } from '../model/vm-aggregate.js';
import type { Atom } from './atom.js';
import { prepareAtom, recordEffect, type AtomStep } from './atom-semantics.js';
import { DONE, type Effect, type Observation } from './effect.js';

const ctx = { hostId: 'h1', nowMs: 5_000 };
const config = testVmConfig('v');
const added: EventBody = { type: 'VmAdded', vmId: 'v', config };
const created = testDomainCreated('v', 'h1', 7);
const built: EventBody = { type: 'DomainBuilt', vmId: 'v' };
const dm: EventBody = { type: 'DeviceModelCreated', vmId: 'v' };

const halted = testVm('v', [added]);
const unbuilt = testVm('v', [added, created]);
const paused = testVm('v', [added, created, built]);
const running = testVm('v', [added, created, built, dm, { type: 'DomainUnpaused', vmId: 'v' }]);

const errorOf = (step: AtomStep | XenopsError) => (step instanceof XenopsError ? step.value : `no error: ${JSON.stringify(step)}`);
function effectOf(step: AtomStep | XenopsError): Effect {
  if (step instanceof XenopsError || step.kind !== 'effect') throw new Error(`expected an effect, got ${JSON.stringify(step)}`);
  return step.effect;
}
function factsOf(step: AtomStep | XenopsError): readonly EventBody[] {
  if (step instanceof XenopsError || step.kind !== 'facts') throw new Error(`expected facts, got ${JSON.stringify(step)}`);
  return step.events;
}
/** Prepares `atom` on `vm`, has the "backend" observe `observation`, and records it. */
function run(atom: Atom, vm: VmAggregate, observation: Observation = DONE) {
  const effect = effectOf(prepareAtom(atom, vm));
  return recordEffect(effect, observation, vm, ctx);
}
const eventsOf = (r: ReturnType<typeof run>) => {
  if (r instanceof XenopsError) throw r;
  return r.events;
};

describe('VM atoms (§7.3, §8.1)', () => {
  it('VM_create: Already_exists(domain) with a domain, DNE(VM) without a configuration; the domain record comes from the configuration', () => {
    expect(errorOf(prepareAtom({ kind: 'VM_create' }, unbuilt))).toEqual(['Already_exists', ['domain', 'v']]);
    expect(errorOf(prepareAtom({ kind: 'VM_create' }, testVm('v', [])))).toEqual(['Does_not_exist', ['VM', 'v/config']]);
    const consoles = [{ protocol: 'Rfb' as const, port: 5903, path: '' }];
    const [ev] = eventsOf(run({ kind: 'VM_create' }, halted, { kind: 'created', domid: 3, consoles }));
    expect(ev).toEqual({
      type: 'DomainCreated',
      vmId: 'v',
      domid: 3,
      host: 'h1',
      startTime: 5,
      hvm: true,
      domainType: 'Domain_HVM',
      vcpus: 2,
      memoryTarget: config.memory_dynamic_max,
      memoryLimit: config.memory_static_max,
      shadowMultiplier: 1,
      rtcTimeoffset: '',
      xsdata: [],
      consoles,
    });
  });

  it('atoms that need a domain fail DNE(dom) without one', () => {
    const atoms: Atom[] = [
      { kind: 'VM_build', force: false },
      { kind: 'VM_create_device_model', saveState: false },
      { kind: 'VM_pause' },
      { kind: 'VM_mark_survivable' },
      { kind: 'VM_shutdown_domain', reason: 'poweroff', delay: 1 },
      { kind: 'VM_save', disk: ['VDI', 'sr/x'] },
      { kind: 'VM_restore', disk: ['VDI', 'sr/x'] },
      { kind: 'VM_set_xsdata', xsdata: [] },
      { kind: 'VM_set_shadow_multiplier', multiplier: 2 },
      { kind: 'VM_set_memory_dynamic_range', minimum: 1, maximum: 2 },
      { kind: 'VM_set_vcpus', vcpus: 1 },
    ];
    for (const atom of atoms) expect(errorOf(prepareAtom(atom, halted)), atom.kind).toEqual(['Does_not_exist', ['domain', 'v']]);
  });

  it('VM_pause and VM_unpause on an unbuilt domain: Domain_not_built; a pause of a paused domain and an unpause without a domain do nothing', () => {
    expect(errorOf(prepareAtom({ kind: 'VM_pause' }, unbuilt))).toBe('Domain_not_built');
    expect(errorOf(prepareAtom({ kind: 'VM_unpause' }, unbuilt))).toBe('Domain_not_built');
    expect(factsOf(prepareAtom({ kind: 'VM_pause' }, paused))).toEqual([]);
    expect(factsOf(prepareAtom({ kind: 'VM_unpause' }, halted))).toEqual([]);
    expect(factsOf(prepareAtom({ kind: 'VM_unpause' }, running))).toEqual([]);
    expect(eventsOf(run({ kind: 'VM_unpause' }, paused))).toEqual([{ type: 'DomainUnpaused', vmId: 'v' }]);
    expect(eventsOf(run({ kind: 'VM_pause' }, running))).toEqual([{ type: 'DomainPaused', vmId: 'v' }]);
    // The best-effort pause of a teardown asks nothing of a VM it cannot pause.
    for (const vm of [halted, unbuilt, paused]) expect(factsOf(prepareAtom({ kind: 'VM_pause', bestEffort: true }, vm))).toEqual([]);
  });

  it('VM_set_vcpus: Invalid_vcpus is checked before the domain (as xenopsd); then a built domain, with its device model for HVM', () => {
    for (const vcpus of [0, -1, 3]) {
      expect(errorOf(prepareAtom({ kind: 'VM_set_vcpus', vcpus }, halted)), String(vcpus)).toEqual(['Invalid_vcpus', 2]);
      expect(errorOf(prepareAtom({ kind: 'VM_set_vcpus', vcpus }, running)), String(vcpus)).toEqual(['Invalid_vcpus', 2]);
    }
    expect(errorOf(prepareAtom({ kind: 'VM_set_vcpus', vcpus: 1 }, unbuilt))).toBe('Domain_not_built');
    expect(errorOf(prepareAtom({ kind: 'VM_set_vcpus', vcpus: 1 }, paused))).toBe('Domain_not_built'); // HVM without its device model
    expect(eventsOf(run({ kind: 'VM_set_vcpus', vcpus: 1 }, running))).toEqual([{ type: 'DomainVcpusSet', vmId: 'v', vcpus: 1 }]);
    const pv = testVm('v', [added, testDomainCreated('v', 'h1', 1, false), built]);
    expect(effectOf(prepareAtom({ kind: 'VM_set_vcpus', vcpus: 2 }, pv))).toEqual({ kind: 'VM_set_vcpus', vmId: 'v', vcpus: 2 });
  });

  it('VM_set_shadow_multiplier needs a built domain, and for HVM its device model', () => {
    expect(errorOf(prepareAtom({ kind: 'VM_set_shadow_multiplier', multiplier: 2 }, unbuilt))).toBe('Domain_not_built');
    expect(errorOf(prepareAtom({ kind: 'VM_set_shadow_multiplier', multiplier: 2 }, paused))).toBe('Domain_not_built');
    expect(eventsOf(run({ kind: 'VM_set_shadow_multiplier', multiplier: 2 }, running))).toEqual([{ type: 'DomainShadowMultiplierSet', vmId: 'v', multiplier: 2 }]);
  });

  it('VM_set_memory_dynamic_range: minimum above maximum, or maximum above static max, is an Internal_error before the domain is looked at', () => {
    expect(errorOf(prepareAtom({ kind: 'VM_set_memory_dynamic_range', minimum: 3, maximum: 2 }, halted))).toEqual([
      'Internal_error',
      'memory dynamic range: minimum 3 is greater than maximum 2',
    ]);
    const over = config.memory_static_max + 1;
    expect(errorOf(prepareAtom({ kind: 'VM_set_memory_dynamic_range', minimum: 1, maximum: over }, running))).toEqual([
      'Internal_error',
      `memory dynamic range: maximum ${over} exceeds memory_static_max ${config.memory_static_max}`,
    ]);
    expect(eventsOf(run({ kind: 'VM_set_memory_dynamic_range', minimum: 1, maximum: 2 }, unbuilt))).toEqual([
      { type: 'DomainMemoryRangeSet', vmId: 'v', minimum: 1, maximum: 2 },
    ]);
  });

  it('VM_mark_survivable consumes a resume\u2019s suspend image (§8.1); VM_drop_suspend_image drops it, or does nothing without one', () => {
    const image: EventBody = { type: 'SuspendImageSaved', vmId: 'v', image: { disk: ['VDI', 'sr/s'], record: { hvm: true, domainType: 'Domain_HVM', vcpus: 1, memoryTarget: 1, memoryLimit: 1, shadowMultiplier: 1, rtcTimeoffset: '', xsdata: [] } } };
    const resuming = testVm('v', [added, image, created]);
    expect(factsOf(prepareAtom({ kind: 'VM_mark_survivable' }, resuming))).toEqual([
      { type: 'DomainMarkedSurvivable', vmId: 'v' },
      { type: 'SuspendImageDropped', vmId: 'v', reason: 'resumed' },
    ]);
    expect(factsOf(prepareAtom({ kind: 'VM_mark_survivable' }, unbuilt))).toEqual([{ type: 'DomainMarkedSurvivable', vmId: 'v' }]);
    expect(factsOf(prepareAtom({ kind: 'VM_drop_suspend_image' }, testVm('v', [added, image])))).toEqual([{ type: 'SuspendImageDropped', vmId: 'v', reason: 'shutdown' }]);
    expect(factsOf(prepareAtom({ kind: 'VM_drop_suspend_image' }, halted))).toEqual([]);
  });

  it('VM_shutdown_domain waits min(60, delay) for the acknowledgement and delay in all; the outcome maps to §7.4\u2019s errors', () => {
    expect(effectOf(prepareAtom({ kind: 'VM_shutdown_domain', reason: 'reboot', delay: 90 }, running))).toEqual({
      kind: 'VM_shutdown_domain',
      vmId: 'v',
      reason: 'reboot',
      ackTimeoutS: 60,
      shutdownTimeoutS: 90,
    });
    expect(effectOf(prepareAtom({ kind: 'VM_shutdown_domain', reason: 'poweroff', delay: -5 }, running))).toMatchObject({ ackTimeoutS: 0, shutdownTimeoutS: 0 });
    const atom: Atom = { kind: 'VM_shutdown_domain', reason: 'poweroff', delay: 2 };
    expect(eventsOf(run(atom, running, { kind: 'shutdown', outcome: 'down' }))).toEqual([{ type: 'DomainShutdownAcknowledged', vmId: 'v', reason: 'poweroff' }]);
    expect((run(atom, running, { kind: 'shutdown', outcome: 'no-ack' }) as XenopsError).value).toBe('Failed_to_acknowledge_shutdown_request');
    expect((run(atom, running, { kind: 'shutdown', outcome: 'not-down' }) as XenopsError).value).toEqual(['Failed_to_shutdown', ['v', 2]]);
  });

  it('VM_save carries the domain\u2019s record into the image; the guest\u2019s answer maps to the suspend errors', () => {
    const atom: Atom = { kind: 'VM_save', disk: ['Local', '/x/img'] };
    const effect = effectOf(prepareAtom(atom, running));
    expect(effect).toMatchObject({ kind: 'VM_save', disk: ['Local', '/x/img'], ackTimeoutS: 30, timeoutS: 1200, record: { vcpus: 2, hvm: true } });
    expect(eventsOf(run(atom, running, { kind: 'saved', outcome: 'written' }))).toEqual([
      { type: 'SuspendImageSaved', vmId: 'v', image: { disk: ['Local', '/x/img'], record: (effect as { record: unknown }).record } },
    ]);
    expect((run(atom, running, { kind: 'saved', outcome: 'no-ack' }) as XenopsError).value).toBe('Failed_to_acknowledge_suspend_request');
    expect((run(atom, running, { kind: 'saved', outcome: 'not-done' }) as XenopsError).value).toEqual(['Failed_to_suspend', ['v', 1200]]);
  });

  it('VM_restore records what the image held; VM_remove, VM_destroy, VM_delay, run_script', () => {
    const record = { hvm: true, domainType: 'Domain_HVM' as const, vcpus: 1, memoryTarget: 5, memoryLimit: 9, shadowMultiplier: 1, rtcTimeoffset: '', xsdata: [] };
    expect(eventsOf(run({ kind: 'VM_restore', disk: ['VDI', 'sr/s'] }, unbuilt, { kind: 'restored', record }))).toEqual([{ type: 'DomainRestored', vmId: 'v', record }]);
    expect(eventsOf(run({ kind: 'VM_remove' }, halted))).toEqual([{ type: 'VmRemoved', vmId: 'v' }]);
    expect(factsOf(prepareAtom({ kind: 'VM_destroy' }, halted))).toEqual([]);
    expect(eventsOf(run({ kind: 'VM_destroy' }, running))).toEqual([{ type: 'DomainDestroyed', vmId: 'v' }]);
    expect(prepareAtom({ kind: 'VM_delay', seconds: -2 }, halted)).toEqual({ kind: 'wait', seconds: 0 });
    const script = run({ kind: 'VM_run_script', script: 's' }, running, { kind: 'script', rc: 0, stdout: '', stderr: '' });
    expect(script).toEqual({ events: [], result: new Map<string, unknown>([['rc', 0], ['stdout', ''], ['stderr', '']]) });
  });

  it('an observation of the wrong kind is an Internal_error, not a fact', () => {
    expect((run({ kind: 'VM_create' }, halted, DONE) as XenopsError).value).toEqual(['Internal_error', 'backend: VM_create observed done, expected created']);
  });
});

describe('device atoms (§7.6)', () => {
  const vbd = (dev: string, extra: Record<string, unknown> = {}): EventBody => ({
    type: 'DeviceAdded',
    vmId: 'v',
    device: { kind: 'vbd', config: VbdT.decode({ id: ['v', dev], mode: 'ReadWrite', ty: 'Disk', ...extra }, 'vbd') },
  });
  const vif = (dev: string, position: number): EventBody => ({
    type: 'DeviceAdded',
    vmId: 'v',
    device: { kind: 'vif', config: VifT.decode({ id: ['v', dev], position, mac: '00:16:3e:00:00:01', pvs_proxy: ['site', [], 'if'] }, 'vif') },
  });
  const plugged = (kind: 'vbd' | 'vif' | 'pci', dev: string, diskNumber?: number): EventBody => ({ type: 'DevicePlugged', vmId: 'v', kind, dev, ...(diskNumber === undefined ? {} : { diskNumber }) });

  it('a VBD without position gets the smallest disk number used neither by plugged VBDs nor by the explicit positions reserved by the same operation', () => {
    const vm = testVm('v', [added, created, vbd('a'), vbd('b'), plugged('vbd', 'a', 0), vbd('c')]);
    expect(effectOf(prepareAtom({ kind: 'VBD_plug', dev: 'c', reserved: [] }, vm))).toMatchObject({ diskNumber: 1 });
    expect(effectOf(prepareAtom({ kind: 'VBD_plug', dev: 'c', reserved: [1, 2] }, vm))).toMatchObject({ diskNumber: 3 });
    expect(eventsOf(run({ kind: 'VBD_plug', dev: 'c', reserved: [1] }, vm))).toEqual([{ type: 'DevicePlugged', vmId: 'v', kind: 'vbd', dev: 'c', diskNumber: 2 }]);
  });

  it('an explicit VBD position whose disk number is taken fails Already_exists(vbd, n); its own position is not reserved against it', () => {
    const vm = testVm('v', [added, created, vbd('a'), plugged('vbd', 'a', 3), vbd('x', { position: ['Xen', 3, 0] }), vbd('y', { position: ['Xen', 4, 0] })]);
    expect(errorOf(prepareAtom({ kind: 'VBD_plug', dev: 'x', reserved: [3, 4] }, vm))).toEqual(['Already_exists', ['vbd', '3']]);
    expect(effectOf(prepareAtom({ kind: 'VBD_plug', dev: 'y', reserved: [3, 4] }, vm))).toMatchObject({ diskNumber: 4 });
  });

  it('VIFs and PCIs clash on position with another plugged device of their kind', () => {
    const vm = testVm('v', [added, created, vif('eth0', 0), vif('eth1', 0), plugged('vif', 'eth0')]);
    expect(errorOf(prepareAtom({ kind: 'VIF_plug', dev: 'eth1' }, vm))).toEqual(['Already_exists', ['vif', '0']]);
  });

  it('plugging needs a domain and an unplugged device; unplugging a plugged one; devices must exist', () => {
    const vm = testVm('v', [added, vbd('a')]);
    expect(errorOf(prepareAtom({ kind: 'VBD_plug', dev: 'a', reserved: [] }, vm))).toEqual(['Does_not_exist', ['domain', 'v']]);
    const live = testVm('v', [added, created, vbd('a'), plugged('vbd', 'a', 0), vbd('b')]);
    expect(errorOf(prepareAtom({ kind: 'VBD_plug', dev: 'a', reserved: [] }, live))).toBe('Device_is_connected');
    expect(errorOf(prepareAtom({ kind: 'VBD_unplug', dev: 'b', force: true }, live))).toBe('Device_not_connected');
    expect(eventsOf(run({ kind: 'VBD_unplug', dev: 'a', force: true }, live))).toEqual([{ type: 'DeviceUnplugged', vmId: 'v', kind: 'vbd', dev: 'a' }]);
    expect(errorOf(prepareAtom({ kind: 'VIF_set_active', dev: 'nope', active: true }, live))).toEqual(['Does_not_exist', ['VM', 'v/vif.nope']]);
    expect(errorOf(prepareAtom({ kind: 'PCI_plug', dev: 'nope' }, live))).toEqual(['Does_not_exist', ['PCI', 'v/pci.nope']]);
  });

  it('eject drops the backend, insert sets it; VIF_set computes the new stored value (and None removes it)', () => {
    const vm = testVm('v', [added, created, vbd('cd', { backend: ['Local', '/iso'], ty: 'CDROM', mode: 'ReadOnly' }), vif('eth0', 0)]);
    const [ejected] = eventsOf(run({ kind: 'VBD_eject', dev: 'cd' }, vm));
    expect(ejected).toMatchObject({ type: 'DeviceConfigChanged', reason: 'eject' });
    expect('backend' in (ejected as { device: { config: object } }).device.config).toBe(false);
    expect(eventsOf(run({ kind: 'VBD_insert', dev: 'cd', disk: ['VDI', 'sr/new'] }, vm))[0]).toMatchObject({ device: { config: { backend: ['VDI', 'sr/new'] } }, reason: 'insert' });
    const carrier = effectOf(prepareAtom({ kind: 'VIF_set', dev: 'eth0', field: 'carrier', valueJson: 'false' }, vm));
    expect(carrier).toMatchObject({ kind: 'VIF_set', field: 'carrier', plugged: false, vif: { carrier: false } });
    expect(eventsOf(run({ kind: 'VIF_set', dev: 'eth0', field: 'carrier', valueJson: 'false' }, vm))).toEqual([
      { type: 'DeviceConfigChanged', vmId: 'v', device: { kind: 'vif', config: (carrier as { vif: unknown }).vif }, reason: 'set_carrier' },
    ]);
    const proxy = effectOf(prepareAtom({ kind: 'VIF_set', dev: 'eth0', field: 'pvs_proxy', valueJson: 'null' }, vm));
    expect('pvs_proxy' in (proxy as { vif: object }).vif).toBe(false);
    expect(prepareAtom({ kind: 'VIF_set', dev: 'eth0', field: 'carrier', valueJson: '"yes"' }, vm)).toBeInstanceOf(XenopsError);
  });

  it('metadata import writes the configuration and devices at once (facts), result the VM id; a plugged device it would delete refuses it whole', () => {
    const doc = (vbds: string[]) =>
      wireToJson(MetadataT.encode({ vm: config, vbds: vbds.map((d) => VbdT.decode({ id: ['v', d], mode: 'ReadWrite', ty: 'Disk' }, 'vbd')), vifs: [], pcis: [], vgpus: [], vusbs: [] }, 'internal'));
    const step = prepareAtom({ kind: 'VM_import_metadata', metadataJson: doc(['hda']) }, halted);
    expect(step).toMatchObject({ kind: 'facts', result: 'v' });
    expect(factsOf(step).map((e) => e.type)).toEqual(['VmAdded', 'DeviceAdded']);
    expect(factsOf(step)[1]).toMatchObject({ device: { config: { id: ['v', 'xvda'] } } });
    const live = testVm('v', [added, created, vbd('old'), plugged('vbd', 'old', 0)]);
    expect(errorOf(prepareAtom({ kind: 'VM_import_metadata', metadataJson: doc([]) }, live))).toBe('Device_is_connected');
  });
});
