import { Errors, XenopsError } from '../errors.js';
import type { Console, DomainRecord, DomainType, EventBody } from '../events/event.js';
import { decodeField, NetworkT, parseJsonWire, PciAddressT, VifT, type PciAddress, type Type, type Vif, type VmConfig, type WireOut } from '../idl/index.js';
import { decodeMetadataJson, importEvents } from '../model/import-metadata.js';
import type { Domain, VmAggregate } from '../model/vm-aggregate.js';
import type { Atom } from './atom.js';
import { diskNumberFor, entryOf, positionClash } from './device-rules.js';
import type { Effect, EffectOf, Observation } from './effect.js';

/**
 * The engine's semantics of atoms (xenopsd's `perform_atomic`, API.md §7.3, §7.6, §8.1): what an
 * atom requires of the VM, which backend effect carries it out, and which facts record what the
 * backend observed. Pure: a backend never decides anything a rule here decides.
 */

/** How an atom is carried out, as decided against the VM's state right before it. */
export type AtomStep =
  /** The backend performs `effect`; `recordEffect` turns what it observed into facts. */
  | { readonly kind: 'effect'; readonly effect: Effect }
  /** The engine waits (a cancellation point, §7.1); nothing is recorded. */
  | { readonly kind: 'wait'; readonly seconds: number }
  /** Nothing to perform: the facts (possibly none) are known now. */
  | { readonly kind: 'facts'; readonly events: readonly EventBody[]; readonly result?: WireOut };

/** Facts an atom left, and for the last atom of some operations the task's result. */
export interface AtomRecord {
  readonly events: readonly EventBody[];
  /** The task's result (xenopsd-encoded wire value), e.g. run_script's `{rc, stdout, stderr}`. */
  readonly result?: WireOut;
}

export interface AtomContext {
  /** The host whose agent performs the atom (domains are per host). */
  readonly hostId: string;
  readonly nowMs: number;
}

/** Guest acknowledgement windows of a suspend (API.md §6.1, §7.4). */
export const SUSPEND_ACK_WINDOW_S = 30;
export const SUSPEND_TIMEOUT_S = 1200;
/** The acknowledgement of a clean shutdown is awaited at most this long (§7.4). */
export const SHUTDOWN_ACK_WINDOW_S = 60;

const NOTHING: AtomStep = Object.freeze({ kind: 'facts', events: Object.freeze([]) as readonly EventBody[] });
const effect = (e: Effect): AtomStep => ({ kind: 'effect', effect: e });
const facts = (...events: EventBody[]): AtomStep => ({ kind: 'facts', events });

function requireConfig(vm: VmAggregate): VmConfig {
  if (!vm.config) throw Errors.vmDoesNotExist(vm.id);
  return vm.config;
}

function requireDomain(vm: VmAggregate): Domain {
  if (!vm.domain) throw Errors.domainDoesNotExist(vm.id);
  return vm.domain;
}

/** set_vcpus / set_shadow_multiplier need a built domain, and for HVM its device model (§8.1). */
function requireLiveDomain(vm: VmAggregate): Domain {
  const d = requireDomain(vm);
  if (!d.built || (d.hvm && !d.deviceModel)) throw Errors.domainNotBuilt();
  return d;
}

/** What a suspend image of this domain holds. */
export function recordOf(d: DomainRecord): DomainRecord {
  return {
    hvm: d.hvm,
    domainType: d.domainType,
    vcpus: d.vcpus,
    memoryTarget: d.memoryTarget,
    memoryLimit: d.memoryLimit,
    shadowMultiplier: d.shadowMultiplier,
    rtcTimeoffset: d.rtcTimeoffset,
    xsdata: d.xsdata,
  };
}

/**
 * Validates `atom` against the VM's state and says how it is carried out, or why it cannot be
 * (a XenopsError: the task fails with it).
 */
export function prepareAtom(atom: Atom, vm: VmAggregate): AtomStep | XenopsError {
  try {
    return prepare(atom, vm);
  } catch (e) {
    if (e instanceof XenopsError) return e;
    throw e;
  }
}

function prepare(atom: Atom, vm: VmAggregate): AtomStep {
  const vmId = vm.id;
  switch (atom.kind) {
    case 'VM_create':
      if (vm.domain) throw Errors.alreadyExists('domain', vmId);
      return effect({ kind: 'VM_create', vmId, config: requireConfig(vm) });
    case 'VM_build':
      requireDomain(vm);
      return effect({ kind: 'VM_build', vmId, force: atom.force });
    case 'VM_create_device_model':
      requireDomain(vm);
      return effect({ kind: 'VM_create_device_model', vmId, saveState: atom.saveState });
    case 'VM_destroy_device_model':
      return vm.domain?.deviceModel ? effect({ kind: 'VM_destroy_device_model', vmId }) : NOTHING;
    case 'VM_pause': {
      if (atom.bestEffort && (!vm.domain || !vm.domain.built || vm.domain.paused)) return NOTHING;
      const domain = requireDomain(vm);
      if (!domain.built) throw Errors.domainNotBuilt();
      return domain.paused ? NOTHING : effect({ kind: 'VM_pause', vmId });
    }
    case 'VM_unpause': {
      // VM.unpause is accepted in any power state and is a no-op unless the domain is Paused.
      const domain = vm.domain;
      if (!domain) return NOTHING;
      if (!domain.built) throw Errors.domainNotBuilt();
      return domain.paused ? effect({ kind: 'VM_unpause', vmId }) : NOTHING;
    }
    case 'VM_mark_survivable':
      requireDomain(vm);
      // A resume consumes its image once the new domain is survivable (§8.1).
      return vm.suspendImage
        ? facts({ type: 'DomainMarkedSurvivable', vmId }, { type: 'SuspendImageDropped', vmId, reason: 'resumed' })
        : facts({ type: 'DomainMarkedSurvivable', vmId });
    case 'VM_shutdown_domain': {
      requireDomain(vm);
      const delay = Math.max(0, atom.delay);
      return effect({ kind: 'VM_shutdown_domain', vmId, reason: atom.reason, ackTimeoutS: Math.min(SHUTDOWN_ACK_WINDOW_S, delay), shutdownTimeoutS: delay });
    }
    case 'VM_destroy':
      return vm.domain ? effect({ kind: 'VM_destroy', vmId }) : NOTHING;
    case 'VM_save': {
      const domain = requireDomain(vm);
      return effect({ kind: 'VM_save', vmId, disk: atom.disk, record: recordOf(domain), ackTimeoutS: SUSPEND_ACK_WINDOW_S, timeoutS: SUSPEND_TIMEOUT_S });
    }
    case 'VM_restore':
      requireDomain(vm);
      return effect({ kind: 'VM_restore', vmId, disk: atom.disk, ...(vm.suspendImage ? { logged: vm.suspendImage.record } : {}) });
    case 'VM_migrate_send': {
      const domain = requireDomain(vm);
      const transferId = vm.running?.taskId;
      if (transferId === undefined) throw Errors.internal(`VM ${vmId}: a migration runs only as a task`);
      return effect({ kind: 'VM_migrate_send', vmId, destination: atom.destination, url: atom.url, transferId, record: recordOf(domain), config: requireConfig(vm) });
    }
    case 'VM_migrate_handover':
      return { kind: 'facts', events: handoverEvents(vm, atom) };
    case 'VM_migrate_receive': {
      requireDomain(vm);
      const transferId = vm.running?.taskId;
      if (transferId === undefined) throw Errors.internal(`VM ${vmId}: a migration runs only as a task`);
      return effect({ kind: 'VM_migrate_receive', vmId, transferId });
    }
    case 'VM_drop_suspend_image':
      return vm.suspendImage ? facts({ type: 'SuspendImageDropped', vmId, reason: 'shutdown' }) : NOTHING;
    case 'VM_set_vcpus': {
      const config = requireConfig(vm);
      // Checked before the domain, as xenopsd does.
      if (atom.vcpus <= 0 || atom.vcpus > config.vcpu_max) throw Errors.invalidVcpus(config.vcpu_max);
      requireLiveDomain(vm);
      return effect({ kind: 'VM_set_vcpus', vmId, vcpus: atom.vcpus });
    }
    case 'VM_set_shadow_multiplier':
      requireLiveDomain(vm);
      return effect({ kind: 'VM_set_shadow_multiplier', vmId, multiplier: atom.multiplier });
    case 'VM_set_memory_dynamic_range': {
      const config = requireConfig(vm);
      if (atom.minimum > atom.maximum) {
        throw Errors.internal(`memory dynamic range: minimum ${atom.minimum} is greater than maximum ${atom.maximum}`);
      }
      if (atom.maximum > config.memory_static_max) {
        throw Errors.internal(`memory dynamic range: maximum ${atom.maximum} exceeds memory_static_max ${config.memory_static_max}`);
      }
      requireDomain(vm);
      return effect({ kind: 'VM_set_memory_dynamic_range', vmId, minimum: atom.minimum, maximum: atom.maximum });
    }
    case 'VM_set_xsdata':
      requireDomain(vm);
      return effect({ kind: 'VM_set_xsdata', vmId, xsdata: atom.xsdata });
    case 'VM_delay':
      return { kind: 'wait', seconds: Math.max(0, atom.seconds) };
    case 'VM_noop':
      return effect({ kind: 'VM_guest_request', vmId, name: atom.name });
    case 'VM_run_script':
      return effect({ kind: 'VM_run_script', vmId, script: atom.script });
    case 'VM_remove':
      return effect({ kind: 'VM_remove', vmId });
    case 'VM_import_metadata':
      // An import refused part-way changes nothing (§7.9 step 4): its facts are all or nothing.
      return { kind: 'facts', events: importEvents(vm, decodeMetadataJson(atom.metadataJson)), result: vmId };
    case 'VBD_set_active':
      entryOf(vm, 'vbd', atom.dev);
      return effect({ kind: 'VBD_set_active', vmId, dev: atom.dev, active: atom.active });
    case 'VIF_set_active':
      entryOf(vm, 'vif', atom.dev);
      return effect({ kind: 'VIF_set_active', vmId, dev: atom.dev, active: atom.active });
    case 'VBD_epoch_begin':
    case 'VBD_epoch_end':
      return effect({ kind: atom.kind, vmId, vbd: entryOf(vm, 'vbd', atom.dev).config });
    case 'VBD_plug': {
      requireDomain(vm);
      const entry = entryOf(vm, 'vbd', atom.dev);
      if (entry.plugged) throw Errors.deviceIsConnected();
      const diskNumber = diskNumberFor(vm, entry.config, atom.reserved.filter((n) => n !== entry.config.position?.[1]));
      return effect({ kind: 'VBD_plug', vmId, vbd: entry.config, diskNumber });
    }
    case 'VIF_plug': {
      requireDomain(vm);
      const entry = entryOf(vm, 'vif', atom.dev);
      if (entry.plugged) throw Errors.deviceIsConnected();
      positionClash(vm, 'vif', atom.dev, entry.config.position);
      return effect({ kind: 'VIF_plug', vmId, vif: entry.config });
    }
    case 'PCI_plug': {
      requireDomain(vm);
      const entry = entryOf(vm, 'pci', atom.dev);
      if (entry.plugged) throw Errors.deviceIsConnected();
      positionClash(vm, 'pci', atom.dev, entry.config.position);
      return effect({ kind: 'PCI_plug', vmId, pci: entry.config });
    }
    case 'VBD_unplug': {
      const entry = entryOf(vm, 'vbd', atom.dev);
      if (!entry.plugged) throw Errors.deviceNotConnected();
      return effect({ kind: 'VBD_unplug', vmId, vbd: entry.config, force: atom.force });
    }
    case 'VIF_unplug': {
      const entry = entryOf(vm, 'vif', atom.dev);
      if (!entry.plugged) throw Errors.deviceNotConnected();
      return effect({ kind: 'VIF_unplug', vmId, vif: entry.config, force: atom.force });
    }
    case 'PCI_unplug': {
      const entry = entryOf(vm, 'pci', atom.dev);
      if (!entry.plugged) throw Errors.deviceNotConnected();
      return effect({ kind: 'PCI_unplug', vmId, pci: entry.config });
    }
    case 'VBD_eject': {
      const entry = entryOf(vm, 'vbd', atom.dev);
      return effect({ kind: 'VBD_eject', vmId, vbd: entry.config, plugged: entry.plugged });
    }
    case 'VBD_insert': {
      const entry = entryOf(vm, 'vbd', atom.dev);
      return effect({ kind: 'VBD_insert', vmId, vbd: entry.config, disk: atom.disk, plugged: entry.plugged });
    }
    case 'VIF_set': {
      const entry = entryOf(vm, 'vif', atom.dev);
      const field = VifT.fields.find((f) => f.key === atom.field)!;
      const value = decodeField(field.type as Type<unknown>, parseJsonWire(atom.valueJson), atom.field);
      const vif = { ...entry.config, [atom.field]: value } as Vif;
      if (value === undefined) delete (vif as Record<string, unknown>)[atom.field];
      return effect({ kind: 'VIF_set', vmId, field: atom.field, vif, plugged: entry.plugged });
    }
  }
}

/**
 * The facts of an effect the backend performed, from what it observed; a XenopsError when the
 * observation means the atom failed (a guest that did not acknowledge, §7.4).
 */
export function recordEffect(e: Effect, observation: Observation, vm: VmAggregate, ctx: AtomContext): AtomRecord | XenopsError {
  const { vmId } = e;
  const expect = <K extends Observation['kind']>(kind: K): Extract<Observation, { kind: K }> => {
    if (observation.kind !== kind) throw Errors.internal(`backend: ${e.kind} observed ${observation.kind}, expected ${kind}`);
    return observation as Extract<Observation, { kind: K }>;
  };
  const done = (...events: EventBody[]): AtomRecord => {
    expect('done');
    return { events };
  };
  try {
    switch (e.kind) {
      case 'VM_create': {
        const o = expect('created');
        return { events: [domainCreated(e, o.domid, o.consoles, ctx)] };
      }
      case 'VM_build':
        return done({ type: 'DomainBuilt', vmId });
      case 'VM_create_device_model':
        return done({ type: 'DeviceModelCreated', vmId });
      case 'VM_destroy_device_model':
        return done({ type: 'DeviceModelDestroyed', vmId });
      case 'VM_pause':
        return done({ type: 'DomainPaused', vmId });
      case 'VM_unpause':
        return done({ type: 'DomainUnpaused', vmId });
      case 'VM_shutdown_domain': {
        const { outcome } = expect('shutdown');
        if (outcome === 'no-ack') return Errors.failedToAcknowledgeShutdown();
        if (outcome === 'not-down') return Errors.failedToShutdown(vmId, e.shutdownTimeoutS);
        return { events: [{ type: 'DomainShutdownAcknowledged', vmId, reason: e.reason }] };
      }
      case 'VM_destroy':
        return done({ type: 'DomainDestroyed', vmId });
      case 'VM_save': {
        const { outcome } = expect('saved');
        if (outcome === 'no-ack') return Errors.failedToAcknowledgeSuspend();
        if (outcome === 'not-done') return Errors.failedToSuspend(vmId, e.timeoutS);
        return { events: [{ type: 'SuspendImageSaved', vmId, image: { disk: [e.disk[0], e.disk[1]], record: e.record } }] };
      }
      case 'VM_restore':
      case 'VM_migrate_receive':
        return { events: [{ type: 'DomainRestored', vmId, record: expect('restored').record }] };
      case 'VM_migrate_send':
        // The source domain is unchanged: the teardown and the switch-over that follow say the rest.
        expect('sent');
        return { events: [] };
      case 'VM_set_vcpus':
        return done({ type: 'DomainVcpusSet', vmId, vcpus: e.vcpus });
      case 'VM_set_shadow_multiplier':
        return done({ type: 'DomainShadowMultiplierSet', vmId, multiplier: e.multiplier });
      case 'VM_set_memory_dynamic_range':
        return done({ type: 'DomainMemoryRangeSet', vmId, minimum: e.minimum, maximum: e.maximum });
      case 'VM_set_xsdata':
        return done({ type: 'DomainXsdataSet', vmId, xsdata: e.xsdata });
      case 'VM_guest_request':
        return done();
      case 'VM_run_script': {
        const o = expect('script');
        return { events: [], result: new Map<string, WireOut>([['rc', o.rc], ['stdout', o.stdout], ['stderr', o.stderr]]) };
      }
      case 'VM_remove':
        return done({ type: 'VmRemoved', vmId });
      case 'VBD_set_active':
        return done({ type: 'DeviceActiveSet', vmId, kind: 'vbd', dev: e.dev, active: e.active });
      case 'VIF_set_active':
        return done({ type: 'DeviceActiveSet', vmId, kind: 'vif', dev: e.dev, active: e.active });
      case 'VBD_epoch_begin':
      case 'VBD_epoch_end':
        return done();
      case 'VBD_plug':
        return done({ type: 'DevicePlugged', vmId, kind: 'vbd', dev: e.vbd.id[1], diskNumber: e.diskNumber });
      case 'VIF_plug':
        return done({ type: 'DevicePlugged', vmId, kind: 'vif', dev: e.vif.id[1] });
      case 'PCI_plug':
        return done({ type: 'DevicePlugged', vmId, kind: 'pci', dev: e.pci.id[1] });
      case 'VBD_unplug':
        return done({ type: 'DeviceUnplugged', vmId, kind: 'vbd', dev: e.vbd.id[1] });
      case 'VIF_unplug':
        return done({ type: 'DeviceUnplugged', vmId, kind: 'vif', dev: e.vif.id[1] });
      case 'PCI_unplug':
        return done({ type: 'DeviceUnplugged', vmId, kind: 'pci', dev: e.pci.id[1] });
      case 'VBD_eject': {
        // The stored record as it is now (it may have changed since the atom was prepared).
        const config = vm.devices.vbd.get(e.vbd.id[1])?.config ?? e.vbd;
        const { backend: _ejected, ...rest } = config;
        return done({ type: 'DeviceConfigChanged', vmId, device: { kind: 'vbd', config: rest }, reason: 'eject' });
      }
      case 'VBD_insert': {
        const config = vm.devices.vbd.get(e.vbd.id[1])?.config ?? e.vbd;
        return done({ type: 'DeviceConfigChanged', vmId, device: { kind: 'vbd', config: { ...config, backend: [e.disk[0], e.disk[1]] } }, reason: 'insert' });
      }
      case 'VIF_set':
        return done({ type: 'DeviceConfigChanged', vmId, device: { kind: 'vif', config: e.vif }, reason: `set_${e.field}` });
    }
  } catch (err) {
    if (err instanceof XenopsError) return err;
    throw err;
  }
}

/**
 * The switch-over of a migration (§7.8): the maps rewrite the stored device configurations, then
 * the VM and its running task pass to the destination, in one message.
 */
function handoverEvents(vm: VmAggregate, atom: Extract<Atom, { kind: 'VM_migrate_handover' }>): EventBody[] {
  const taskId = vm.running?.taskId;
  if (taskId === undefined) throw Errors.internal(`VM ${vm.id}: a migration runs only as a task`);
  if (vm.domain) throw Errors.internal(`VM ${vm.id}: the source domain must be gone before the switch-over`);
  const maps = migrationMaps(atom);
  const events: EventBody[] = [];
  const vdiMap = new Map(atom.vdiMap);
  for (const [, entry] of vm.devices.vbd) {
    const backend = entry.config.backend;
    const target = backend?.[0] === 'VDI' ? vdiMap.get(backend[1]) : undefined;
    if (target !== undefined) events.push({ type: 'DeviceConfigChanged', vmId: vm.id, device: { kind: 'vbd', config: { ...entry.config, backend: ['VDI', target] } }, reason: 'migrate vdi_map' });
  }
  for (const [dev, entry] of vm.devices.vif) {
    const backend = maps.vif[dev];
    if (backend !== undefined) events.push({ type: 'DeviceConfigChanged', vmId: vm.id, device: { kind: 'vif', config: { ...entry.config, backend } }, reason: 'migrate vif_map' });
  }
  for (const [dev, entry] of vm.devices.vgpu) {
    const address = maps.pci[dev];
    if (address !== undefined) {
      events.push({ type: 'DeviceConfigChanged', vmId: vm.id, device: { kind: 'vgpu', config: { ...entry.config, physical_pci_address: address } }, reason: 'migrate pci_map' });
    }
  }
  const previousHost = vm.owner ?? vm.running?.host ?? '';
  events.push({ type: 'VmOwnerChanged', vmId: vm.id, host: atom.destination, previousHost, migration: { taskId, progress: atom.progress } });
  // A localhost migration: the destination is this same agent, which goes on at once.
  if (atom.destination === previousHost) events.push({ type: 'MigrationReceived', vmId: vm.id, taskId });
  return events;
}

/** The VIF and PCI maps of a migration, checked: every value decodes as its field's type. */
export function migrationMaps(m: { readonly vifMapJson: string; readonly pciMapJson: string }): {
  readonly vif: Record<string, Vif['backend']>;
  readonly pci: Record<string, PciAddress>;
} {
  const decodeMap = <T>(json: string, type: Type<T>, what: string): Record<string, T> => {
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      throw Errors.internal(`VM.migrate: ${what} is not JSON`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw Errors.internal(`VM.migrate: ${what} is not an object`);
    const out: Record<string, T> = Object.create(null) as Record<string, T>;
    for (const [k, v] of Object.entries(raw)) out[k] = decodeField(type, v as never, `${what}.${k}`);
    return out;
  };
  return { vif: decodeMap(m.vifMapJson, NetworkT, 'vif_map'), pci: decodeMap(m.pciMapJson, PciAddressT, 'pci_map') };
}

/**
 * The domain a VM_create made (§8.1): its record comes from the configuration (memory target =
 * dynamic max, limit = static max, vCPUs as configured), its id and consoles from the backend.
 */
function domainCreated(e: EffectOf<'VM_create'>, domid: number, consoles: readonly Console[], ctx: AtomContext): EventBody {
  const { config } = e;
  const [builder, info] = config.ty;
  const hvm = builder === 'HVM';
  return {
    type: 'DomainCreated',
    vmId: e.vmId,
    domid,
    host: ctx.hostId,
    startTime: ctx.nowMs / 1000,
    hvm,
    domainType: `Domain_${builder}` as DomainType,
    vcpus: config.vcpus,
    memoryTarget: config.memory_dynamic_max,
    memoryLimit: config.memory_static_max,
    shadowMultiplier: hvm && 'shadow_multiplier' in info ? info.shadow_multiplier : 1.0,
    rtcTimeoffset: hvm && 'timeoffset' in info ? info.timeoffset : '',
    xsdata: config.xsdata,
    consoles: consoles.map((c) => ({ protocol: c.protocol, port: c.port, path: c.path })),
  };
}
