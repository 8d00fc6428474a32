import { setTimeout as sleep } from 'node:timers/promises';
import {
  decodeMetadataJson,
  Errors,
  importEvents,
  type Console,
  type Domain,
  type DomainRecord,
  type DomainType,
  type EventBody,
  type VmAggregate,
  type VmConfig,
} from '@xenops/core';
import type { Atom } from '../../operations/atom.js';
import type { AtomContext, AtomOutcome, Backend } from '../backend.js';
import { performDeviceAtom } from './devices.js';
import { DomidAllocator } from './domids.js';
import { readSuspendImage, writeSuspendImage } from './suspend-image.js';

/** Guest acknowledgement windows (API.md §6.1, §7.4). */
const SUSPEND_ACK_WINDOW_S = 30;
const SUSPEND_TIMEOUT_S = 1200;

const done = (...events: EventBody[]): AtomOutcome => ({ events });

/**
 * The simulator backend (API.md §8): domains are records in the log, so a "running" VM is still
 * running after a restart. Every atom answers at once except the guest waits of §8.2 and VM.delay.
 */
export class SimulatorBackend implements Backend {
  readonly name = 'simulator';
  readonly journalsEachAtom = false;

  constructor(
    private readonly hostId: string,
    readonly domids: DomidAllocator,
    private readonly now: () => number = Date.now,
  ) {}

  async perform(atom: Atom, ctx: AtomContext): Promise<AtomOutcome> {
    const { vm } = ctx;
    const vmId = vm.id;
    switch (atom.kind) {
      case 'VM_create':
        if (vm.domain) throw Errors.alreadyExists('domain', vmId);
        return done(this.createDomain(vm, requireConfig(vm)));
      case 'VM_build':
        requireDomain(vm);
        return done({ type: 'DomainBuilt', vmId });
      case 'VM_create_device_model':
        requireDomain(vm);
        return done({ type: 'DeviceModelCreated', vmId });
      case 'VM_destroy_device_model':
        return vm.domain?.deviceModel ? done({ type: 'DeviceModelDestroyed', vmId }) : done();
      case 'VM_pause': {
        if (atom.bestEffort && (!vm.domain || !vm.domain.built || vm.domain.paused)) return done();
        const domain = requireDomain(vm);
        if (!domain.built) throw Errors.domainNotBuilt();
        return domain.paused ? done() : done({ type: 'DomainPaused', vmId });
      }
      case 'VM_unpause': {
        // VM.unpause is accepted in any power state and is a no-op unless the domain is Paused.
        const domain = vm.domain;
        if (!domain) return done();
        if (!domain.built) throw Errors.domainNotBuilt();
        return domain.paused ? done({ type: 'DomainUnpaused', vmId }) : done();
      }
      case 'VM_mark_survivable': {
        requireDomain(vm);
        const events: EventBody[] = [{ type: 'DomainMarkedSurvivable', vmId }];
        // A resume consumes its image once the new domain is survivable (§8.1).
        if (vm.suspendImage) events.push({ type: 'SuspendImageDropped', vmId, reason: 'resumed' });
        return { events };
      }
      case 'VM_shutdown_domain':
        return this.shutdownDomain(atom, ctx);
      case 'VM_destroy':
        return vm.domain ? done({ type: 'DomainDestroyed', vmId }) : done();
      case 'VM_save':
        return this.save(atom.disk, ctx);
      case 'VM_restore': {
        requireDomain(vm);
        const record = atom.disk[0] === 'Local' ? await readSuspendImage(atom.disk[1], vmId) : vm.suspendImage?.record;
        if (!record) throw Errors.internal(`VM ${vmId} has no suspend image on ${atom.disk[1]}`);
        return done({ type: 'DomainRestored', vmId, record });
      }
      case 'VM_drop_suspend_image':
        return vm.suspendImage ? done({ type: 'SuspendImageDropped', vmId, reason: 'shutdown' }) : done();
      case 'VM_set_vcpus': {
        const config = requireConfig(vm);
        // Checked before the domain, as xenopsd does.
        if (atom.vcpus <= 0 || atom.vcpus > config.vcpu_max) throw Errors.invalidVcpus(config.vcpu_max);
        requireLiveDomain(vm);
        return done({ type: 'DomainVcpusSet', vmId, vcpus: atom.vcpus });
      }
      case 'VM_set_shadow_multiplier':
        requireLiveDomain(vm);
        return done({ type: 'DomainShadowMultiplierSet', vmId, multiplier: atom.multiplier });
      case 'VM_set_memory_dynamic_range': {
        const config = requireConfig(vm);
        if (atom.minimum > atom.maximum) {
          throw Errors.internal(`memory dynamic range: minimum ${atom.minimum} is greater than maximum ${atom.maximum}`);
        }
        if (atom.maximum > config.memory_static_max) {
          throw Errors.internal(`memory dynamic range: maximum ${atom.maximum} exceeds memory_static_max ${config.memory_static_max}`);
        }
        requireDomain(vm);
        return done({ type: 'DomainMemoryRangeSet', vmId, minimum: atom.minimum, maximum: atom.maximum });
      }
      case 'VM_set_xsdata':
        requireDomain(vm);
        return done({ type: 'DomainXsdataSet', vmId, xsdata: atom.xsdata });
      case 'VM_delay':
        ctx.cancelPoint();
        await sleep(Math.max(0, atom.seconds) * 1000, undefined, { signal: ctx.signal });
        return done();
      case 'VM_noop':
        return done();
      case 'VM_run_script':
        return { events: [], result: new Map<string, unknown>([['rc', 0], ['stdout', ''], ['stderr', '']]) };
      case 'VM_remove':
        return done({ type: 'VmRemoved', vmId });
      case 'VM_import_metadata':
        return { events: importEvents(vm, decodeMetadataJson(atom.metadataJson)), result: vmId };
      default: {
        const events = performDeviceAtom(atom, vm);
        if (!events) throw Errors.internal(`the simulator cannot perform ${atom.kind}`);
        return { events };
      }
    }
  }

  private createDomain(vm: VmAggregate, config: VmConfig): EventBody {
    const domid = this.domids.next();
    const [builder, info] = config.ty;
    const hvm = builder === 'HVM';
    const vnc = !hvm && 'vncterm' in info && info.vncterm;
    const consoles: Console[] = hvm
      ? [
          { protocol: 'Rfb', port: 5900 + domid, path: '' },
          { protocol: 'Vt100', port: 9500 + domid, path: '' },
        ]
      : [{ protocol: 'Vt100', port: 9500 + domid, path: '' }, ...(vnc ? [{ protocol: 'Rfb' as const, port: 5900 + domid, path: '' }] : [])];
    return {
      type: 'DomainCreated',
      vmId: vm.id,
      domid,
      host: this.hostId,
      startTime: this.now() / 1000,
      hvm,
      domainType: `Domain_${builder}` as DomainType,
      vcpus: config.vcpus,
      memoryTarget: config.memory_dynamic_max,
      memoryLimit: config.memory_static_max,
      shadowMultiplier: hvm && 'shadow_multiplier' in info ? info.shadow_multiplier : 1.0,
      rtcTimeoffset: hvm && 'timeoffset' in info ? info.timeoffset : '',
      xsdata: config.xsdata,
      consoles,
    };
  }

  /** §7.4 and §8.2: ask the guest, wait for its acknowledgement, then for the domain to go down. */
  private async shutdownDomain(atom: Extract<Atom, { kind: 'VM_shutdown_domain' }>, ctx: AtomContext): Promise<AtomOutcome> {
    const { vm, signal } = ctx;
    requireDomain(vm);
    const delay = Math.max(0, atom.delay);
    switch (vm.guestMode) {
      case 'normal':
        return done({ type: 'DomainShutdownAcknowledged', vmId: vm.id, reason: atom.reason });
      case 'ignore':
        ctx.cancelPoint();
        await sleep(Math.min(60, delay) * 1000, undefined, { signal });
        throw Errors.failedToAcknowledgeShutdown();
      case 'hang':
        ctx.cancelPoint();
        await sleep(delay * 1000, undefined, { signal });
        throw Errors.failedToShutdown(vm.id, delay);
    }
  }

  /** VM_save: the guest acknowledges (the point of no return), then its state becomes the image. */
  private async save(disk: readonly ['Local' | 'VDI', string], ctx: AtomContext): Promise<AtomOutcome> {
    const { vm, signal } = ctx;
    const domain = requireDomain(vm);
    switch (vm.guestMode) {
      case 'ignore':
        ctx.cancelPoint();
        await sleep(SUSPEND_ACK_WINDOW_S * 1000, undefined, { signal });
        throw Errors.failedToAcknowledgeSuspend();
      case 'hang':
        ctx.markNonCancellable();
        await sleep(SUSPEND_TIMEOUT_S * 1000);
        throw Errors.failedToSuspend(vm.id, SUSPEND_TIMEOUT_S);
      case 'normal':
        break;
    }
    ctx.markNonCancellable();
    const record = recordOf(domain);
    if (disk[0] === 'Local') await writeSuspendImage(disk[1], vm.id, record);
    return done({ type: 'SuspendImageSaved', vmId: vm.id, image: { disk: [disk[0], disk[1]], record } });
  }
}

export function recordOf(d: Domain): DomainRecord {
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
