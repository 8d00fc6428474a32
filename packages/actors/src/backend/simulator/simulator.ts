import { setTimeout as sleep } from 'node:timers/promises';
import { Errors, type Console, type DomainType, type EventBody, type VmAggregate, type VmConfig } from '@xenops/core';
import type { Atom } from '../../operations/atom.js';
import type { AtomContext, Backend } from '../backend.js';
import { DomidAllocator } from './domids.js';

/**
 * The simulator backend (API.md §8): domains are records in the log, so a "running" VM is still
 * running after a restart. Every atom answers at once except the guest waits of §8.2.
 */
export class SimulatorBackend implements Backend {
  readonly name = 'simulator';

  constructor(
    private readonly hostId: string,
    readonly domids: DomidAllocator,
    private readonly now: () => number = Date.now,
  ) {}

  async perform(atom: Atom, ctx: AtomContext): Promise<EventBody[]> {
    const { vm } = ctx;
    const vmId = vm.id;
    switch (atom.kind) {
      case 'VM_create': {
        if (vm.domain) throw Errors.alreadyExists('domain', vmId);
        return [this.createDomain(vm, requireConfig(vm))];
      }
      case 'VM_build':
        requireDomain(vm);
        return [{ type: 'DomainBuilt', vmId }];
      case 'VM_create_device_model':
        requireDomain(vm);
        return [{ type: 'DeviceModelCreated', vmId }];
      case 'VM_destroy_device_model':
        if (!vm.domain?.deviceModel) return [];
        return [{ type: 'DeviceModelDestroyed', vmId }];
      case 'VM_pause': {
        if (atom.bestEffort && (!vm.domain || !vm.domain.built || vm.domain.paused)) return [];
        const domain = requireDomain(vm);
        if (!domain.built) throw Errors.domainNotBuilt();
        return domain.paused ? [] : [{ type: 'DomainPaused', vmId }];
      }
      case 'VM_unpause': {
        // VM.unpause is accepted in any power state and is a no-op unless the domain is Paused.
        const domain = vm.domain;
        if (!domain) return [];
        if (!domain.built) throw Errors.domainNotBuilt();
        return domain.paused ? [{ type: 'DomainUnpaused', vmId }] : [];
      }
      case 'VM_mark_survivable':
        requireDomain(vm);
        return [{ type: 'DomainMarkedSurvivable', vmId }];
      case 'VM_shutdown_domain':
        return this.shutdownDomain(atom, ctx);
      case 'VM_destroy':
        if (!vm.domain) return [];
        return [{ type: 'DomainDestroyed', vmId }];
      case 'VM_remove':
        return [{ type: 'VmRemoved', vmId }];
    }
  }

  private createDomain(vm: VmAggregate, config: VmConfig): EventBody {
    const domid = this.domids.next();
    const [builder, info] = config.ty;
    const hvm = builder === 'HVM';
    const consoles: Console[] = hvm
      ? [
          { protocol: 'Rfb', port: 5900 + domid, path: '' },
          { protocol: 'Vt100', port: 9500 + domid, path: '' },
        ]
      : [
          { protocol: 'Vt100', port: 9500 + domid, path: '' },
          ...(('vncterm' in info && info.vncterm) ? [{ protocol: 'Rfb' as const, port: 5900 + domid, path: '' }] : []),
        ];
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
  private async shutdownDomain(atom: Extract<Atom, { kind: 'VM_shutdown_domain' }>, ctx: AtomContext): Promise<EventBody[]> {
    const { vm, signal } = ctx;
    requireDomain(vm);
    const delay = Math.max(0, atom.delay);
    switch (vm.guestMode) {
      case 'normal':
        return [{ type: 'DomainShutdownAcknowledged', vmId: vm.id, reason: atom.reason }];
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
}

function requireConfig(vm: VmAggregate): VmConfig {
  if (!vm.config) throw Errors.vmDoesNotExist(vm.id);
  return vm.config;
}

function requireDomain(vm: VmAggregate) {
  if (!vm.domain) throw Errors.domainDoesNotExist(vm.id);
  return vm.domain;
}
