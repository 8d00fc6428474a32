import { setTimeout as sleep } from 'node:timers/promises';
import {
  DONE,
  Errors,
  XenopsError,
  type Console,
  type DomainEvent,
  type DomainRecord,
  type Effect,
  type EffectOf,
  type GuestMode,
  type HostFacts,
  type Observation,
  type ObservedDomain,
} from '@xenops/core';
import type { Backend, BackendHost, EffectContext, MigrationLink, VmView } from '../backend.js';
import { MigrationTransferError } from '../migration-transfer-error.js';
import { DomidAllocator } from './domids.js';
import { GuestModes } from './guest-modes.js';
import { SIMULATED_HOST } from './host-facts.js';
import { readSuspendImage, writeSuspendImage } from './suspend-image.js';

/** A simulated domain: its id, whether it is paused, and the VBDs plugged into it in order. */
interface SimulatedDomain {
  readonly domid: number;
  paused: boolean;
  readonly vbdPlugOrder: string[];
}

const GUEST_MODES: ReadonlySet<string> = new Set<GuestMode>(['normal', 'ignore', 'hang']);

/**
 * The simulator backend (API.md §8): domains are imaginary, so every effect succeeds at once
 * except the guest waits of §8.2. Its own state is small: the domains it holds (adopted from the
 * log at start, which is what makes a "running" VM still run after a restart), the guests' modes
 * (a file in the data dir) and the VBD plug order of each domain (for DEBUG
 * check-vbd-plug-ordering).
 */
export class SimulatorBackend implements Backend {
  readonly name = 'simulator';
  readonly capabilities = { debugTriggers: true, journalsEachAtom: false, instantAtoms: true } as const;
  private domids = new DomidAllocator();
  private readonly domainsByVm = new Map<string, SimulatedDomain>();
  private readonly listeners = new Set<(e: DomainEvent) => void>();
  private guestModes?: GuestModes;
  private migration?: MigrationLink;

  async start(host: BackendHost): Promise<void> {
    this.domids = new DomidAllocator(host.lastDomid);
    this.guestModes = await GuestModes.load(host.dataDir, host.logger);
    this.domainsByVm.clear();
    this.migration = host.migration;
    for (const d of host.knownDomains) {
      this.domids.observe(d.domid);
      this.domainsByVm.set(d.vmId, { domid: d.domid, paused: d.paused, vbdPlugOrder: [...d.pluggedVbds] });
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.guestModes?.flushed();
  }

  async perform(effect: Effect, ctx: EffectContext): Promise<Observation> {
    const { vmId } = effect;
    switch (effect.kind) {
      case 'VM_create': {
        const domid = this.domids.next();
        this.domainsByVm.set(vmId, { domid, paused: true, vbdPlugOrder: [] });
        return { kind: 'created', domid, consoles: consolesOf(effect, domid) };
      }
      case 'VM_pause':
      case 'VM_unpause': {
        const d = this.domainsByVm.get(vmId);
        if (d) d.paused = effect.kind === 'VM_pause';
        return DONE;
      }
      case 'VM_destroy':
        this.domainsByVm.delete(vmId);
        return DONE;
      case 'VM_shutdown_domain':
        return this.shutdownDomain(effect, ctx);
      case 'VM_save':
        return this.save(effect, ctx);
      case 'VM_migrate_send':
        return this.migrateSend(effect, ctx);
      case 'VM_migrate_receive': {
        const state = this.link().take(effect.transferId);
        if (!state) throw Errors.internal(`VM ${vmId}: the state of migration ${effect.transferId} never arrived complete`);
        return { kind: 'restored', record: decodeMigrationState(state, vmId) };
      }
      case 'VM_restore': {
        const record = effect.disk[0] === 'Local' ? await readSuspendImage(effect.disk[1], vmId) : effect.logged;
        if (!record) throw Errors.internal(`VM ${vmId} has no suspend image on ${effect.disk[1]}`);
        return { kind: 'restored', record };
      }
      case 'VM_run_script':
        return { kind: 'script', rc: 0, stdout: '', stderr: '' };
      case 'VM_remove':
        this.domainsByVm.delete(vmId);
        await this.modes().forget(vmId);
        return DONE;
      case 'VBD_plug':
        this.domainsByVm.get(vmId)?.vbdPlugOrder.push(effect.vbd.id[1]);
        return DONE;
      default:
        // Everything else changes nothing the simulator keeps: the log records it.
        return DONE;
    }
  }

  async domains(): Promise<readonly ObservedDomain[]> {
    return [...this.domainsByVm].map(([vmId, d]) => ({ vmId, domid: d.domid, paused: d.paused }));
  }

  async hostFacts(): Promise<HostFacts> {
    return SIMULATED_HOST;
  }

  onDomainEvent(listener: (e: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async debugTrigger(cmd: string, args: readonly string[], vm: VmView): Promise<void> {
    switch (cmd) {
      case 'reboot':
      case 'halt':
      case 'crash':
        // The guest acts by itself: the engine hears of it as of any domain event.
        this.emit({ vmId: vm.id, kind: 'guest', action: cmd });
        return;
      case 'no-ack': {
        const mode = args[1] ?? 'ignore';
        if (!GUEST_MODES.has(mode)) throw Errors.internal(`DEBUG.trigger no-ack: mode must be ignore, hang or normal, not ${JSON.stringify(mode)}`);
        await this.modes().set(vm.id, mode as GuestMode);
        return;
      }
      case 'check-vbd-plug-ordering': {
        // Since the domain was created, every ReadWrite VBD must have been plugged before every ReadOnly one.
        let firstReadOnly: string | undefined;
        for (const dev of this.domainsByVm.get(vm.id)?.vbdPlugOrder ?? []) {
          const mode = vm.devices.vbd.get(dev)?.config.mode;
          if (mode === 'ReadOnly') firstReadOnly ??= dev;
          else if (mode === 'ReadWrite' && firstReadOnly !== undefined) throw Errors.internal(`VBD plug ordering violated: ${firstReadOnly} before ${dev}`);
        }
        return;
      }
      default:
        throw Errors.unimplemented(cmd);
    }
  }

  private emit(e: DomainEvent): void {
    for (const l of this.listeners) l(e);
  }

  private modes(): GuestModes {
    if (!this.guestModes) throw Errors.internal('the simulator backend is not started');
    return this.guestModes;
  }

  /** §7.4 and §8.2: ask the guest, wait for its acknowledgement, then for the domain to go down. */
  private async shutdownDomain(effect: EffectOf<'VM_shutdown_domain'>, ctx: EffectContext): Promise<Observation> {
    switch (this.modes().get(effect.vmId)) {
      case 'normal':
        return { kind: 'shutdown', outcome: 'down' };
      case 'ignore':
        ctx.cancelPoint();
        await sleep(effect.ackTimeoutS * 1000, undefined, { signal: ctx.signal });
        return { kind: 'shutdown', outcome: 'no-ack' };
      case 'hang':
        ctx.cancelPoint();
        await sleep(effect.shutdownTimeoutS * 1000, undefined, { signal: ctx.signal });
        return { kind: 'shutdown', outcome: 'not-down' };
    }
  }

  private link(): MigrationLink {
    if (!this.migration) throw Errors.internal('this host cannot migrate: its agent gave the backend no migration link');
    return this.migration;
  }

  /**
   * VM_save(live) of a migration (§7.8): the domain's model is its whole state, streamed to the
   * destination's agent; the domain runs on until the teardown. The destination's acknowledgement
   * of the last chunk is the point of no return.
   */
  private async migrateSend(effect: EffectOf<'VM_migrate_send'>, ctx: EffectContext): Promise<Observation> {
    ctx.cancelPoint();
    const state = encodeMigrationState(effect.vmId, effect.record);
    try {
      await this.link().send(effect.destination, { vmId: effect.vmId, transferId: effect.transferId }, state, {
        signal: ctx.signal,
        ...(ctx.progress ? { onProgress: ctx.progress } : {}),
      });
    } catch (e) {
      // The destination's own refusal says why; a destination that cannot be reached is §7.8's error.
      if (ctx.signal.aborted || e instanceof XenopsError) throw e;
      throw new MigrationTransferError(effect.url, e);
    }
    ctx.markNonCancellable();
    return { kind: 'sent' };
  }

  /** VM_save: the guest acknowledges (the point of no return), then its state becomes the image. */
  private async save(effect: EffectOf<'VM_save'>, ctx: EffectContext): Promise<Observation> {
    switch (this.modes().get(effect.vmId)) {
      case 'ignore':
        ctx.cancelPoint();
        await sleep(effect.ackTimeoutS * 1000, undefined, { signal: ctx.signal });
        return { kind: 'saved', outcome: 'no-ack' };
      case 'hang':
        ctx.markNonCancellable();
        await sleep(effect.timeoutS * 1000, undefined, { signal: ctx.signal });
        return { kind: 'saved', outcome: 'not-done' };
      case 'normal':
        break;
    }
    ctx.markNonCancellable();
    if (effect.disk[0] === 'Local') await writeSuspendImage(effect.disk[1], effect.vmId, effect.record);
    return { kind: 'saved', outcome: 'written' };
  }
}

/** A migration's state as the simulator streams it: the domain's model, tagged with its VM. */
function encodeMigrationState(vmId: string, record: DomainRecord): Uint8Array {
  return Buffer.from(JSON.stringify({ format: MIGRATION_STATE_FORMAT, vmId, record }));
}

function decodeMigrationState(state: Uint8Array, vmId: string): DomainRecord {
  let v: { format?: unknown; vmId?: unknown; record?: unknown };
  try {
    v = JSON.parse(Buffer.from(state).toString('utf8')) as typeof v;
  } catch {
    throw Errors.internal(`VM ${vmId}: the received migration state is not readable`);
  }
  if (v.format !== MIGRATION_STATE_FORMAT || v.vmId !== vmId || typeof v.record !== 'object' || v.record === null) {
    throw Errors.internal(`VM ${vmId}: the received migration state is not a simulator state of this VM`);
  }
  return v.record as DomainRecord;
}

const MIGRATION_STATE_FORMAT = 'xenops-simulator-migration/1';

/**
 * Consoles of a simulated domain (§8.1), in this order: HVM: Rfb on 5900+domid, then Vt100 on
 * 9500+domid; PV, PVH, PVinPVH: Vt100, then Rfb when `vncterm` is set.
 */
function consolesOf(effect: EffectOf<'VM_create'>, domid: number): Console[] {
  const [builder, info] = effect.config.ty;
  const rfb: Console = { protocol: 'Rfb', port: 5900 + domid, path: '' };
  const vt100: Console = { protocol: 'Vt100', port: 9500 + domid, path: '' };
  if (builder === 'HVM') return [rfb, vt100];
  return 'vncterm' in info && info.vncterm ? [vt100, rfb] : [vt100];
}
