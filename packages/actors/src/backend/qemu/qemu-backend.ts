import { mkdirSync, rmSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DONE,
  Errors,
  XenopsError,
  type Console,
  type DomainEvent,
  type DomainRecord,
  type Effect,
  type EffectOf,
  type GuestAction,
  type HostFacts,
  type Observation,
  type ObservedDomain,
  type VmConfig,
} from '@xenops/core';
import { DEFAULT_QEMU_BINARY, QemuProcess, type QemuAccel } from '../../backends/qemu/index.js';
import type { Backend, BackendHost, EffectContext } from '../backend.js';
import { DomidAllocator } from '../simulator/domids.js';
import { cdRecord, changeMedium, diskPath, diskRecord, pciRecord, scsiController, vifRecord, withCarrier, type QemuNetwork } from './devices.js';
import { domainDir, qemuRoot, readDomainFile, removeDomainFile, type DeviceRecord } from './domain-files.js';
import { availableMemoryBytes, qemuVersion, readHostFacts } from './host-facts.js';
import { bootOf, machineArgs } from './machine.js';
import { qemuProcessesUnder } from './orphans.js';
import { delay, QemuDomain, shellQuote } from './qemu-domain.js';
import { encodeHeader, readImageHeader } from './suspend-image.js';
import { MigrationTransferError } from '../migration-transfer-error.js';
import { decodeMigrationPayload, encodeMigrationPayload, listeningUri, queryMigrate, ramFraction, type MigrateInfo } from './qemu-migration.js';

export interface QemuBackendOptions {
  /** `--qemu-binary` (default qemu-system-x86_64 from PATH). */
  readonly binary?: string;
  /** `--qemu-accel` (default tcg: a /dev/kvm that opens is no proof a KVM guest runs). */
  readonly accel?: QemuAccel;
  /** `--qemu-sr-dir`: where `["VDI", name]` disks are files. */
  readonly srDir?: string;
  /** `--qemu-network` (default user). */
  readonly network?: QemuNetwork;
  /** How long an unplug waits for the guest to release the device (default 10 s). */
  readonly unplugTimeoutMs?: number;
  /** The address a migration's destination listens on for the stream (default 127.0.0.1). */
  readonly migrationAddress?: string;
}

/** The longest a save or a migration's transfer may take (API.md §7.2's atom limit). */
const SUSPEND_TIMEOUT_MS = 1_200_000;

/** How often a clean shutdown presses the ACPI power button again: one pressed before the guest listens is lost. */
const POWER_BUTTON_INTERVAL_MS = 2_000;

/**
 * The QEMU backend (API.md §8.4): each domain is one `qemu-system-x86_64` process, driven over
 * QMP. The process is spawned paused at VM_create and ended at VM_destroy; devices are hot-plugged
 * into PCIe root ports; a suspend is QEMU's migration stream written behind a header. Its state
 * on disk is one directory per VM under `<data-dir>/qemu` (QMP and serial sockets, pid file,
 * serial.log, domain.json): a restarted agent re-attaches to the processes that still run.
 */
export class QemuBackend implements Backend {
  readonly name = 'qemu';
  readonly capabilities = { debugTriggers: false, journalsEachAtom: true } as const;
  private domids = new DomidAllocator();
  private readonly domainsByVm = new Map<string, QemuDomain>();
  private readonly listeners = new Set<(e: DomainEvent) => void>();
  private host?: BackendHost;
  private version = 'unknown';
  private readonly binary: string;
  private readonly accel: QemuAccel;
  private readonly network: QemuNetwork;

  constructor(private readonly opts: QemuBackendOptions = {}) {
    this.binary = opts.binary ?? DEFAULT_QEMU_BINARY;
    this.accel = opts.accel ?? 'tcg';
    this.network = opts.network ?? 'user';
  }

  async start(host: BackendHost): Promise<void> {
    if (host.dataDir === undefined) throw Errors.internal('the QEMU backend needs a data directory');
    this.host = host;
    this.domids = new DomidAllocator(host.lastDomid);
    this.version = await qemuVersion(this.binary);
    const root = qemuRoot(host.dataDir);
    mkdirSync(root, { recursive: true });
    for (const known of host.knownDomains) {
      this.domids.observe(known.domid);
      const dir = domainDir(host.dataDir, known.vmId);
      const file = readDomainFile(dir);
      if (!file || file.domid !== known.domid) {
        host.logger(`qemu: vm ${known.vmId}: domain ${known.domid}: no QEMU of this domain${file ? ` (${dir} holds domain ${file.domid})` : ''}; the state check tears it down`);
        continue;
      }
      try {
        // After a localhost migration the process lives beside the VM's directory (domain.json says where).
        const d = await QemuDomain.attach(known.vmId, known.domid, file.dir ?? dir, file.vncPort, file.devices, this.hooks(), dir);
        this.domainsByVm.set(known.vmId, d);
        host.logger(`qemu: vm ${known.vmId}: domain ${known.domid}: re-attached to QEMU process ${d.process.pid} (${d.paused ? 'paused' : 'running'})`);
      } catch (e) {
        host.logger(`qemu: vm ${known.vmId}: domain ${known.domid}: cannot re-attach (${(e as Error).message}); the state check tears it down`);
      }
    }
    const owned = new Set([...this.domainsByVm.values()].map((d) => d.process.pid));
    for (const orphan of qemuProcessesUnder(root)) {
      if (owned.has(orphan.pid)) continue;
      host.logger(`qemu: QEMU process ${orphan.pid} (${orphan.dir}) belongs to no domain of this host: stopping it`);
      await stopOrphan(orphan.pid, orphan.dir);
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    // A migration's process that never became a domain: nothing would ever take it over.
    for (const vmId of [...this.incoming.keys()]) await this.abandonMigrationOf(vmId);
    await Promise.all([...this.domainsByVm.values()].map((d) => d.detach().catch(() => undefined)));
    this.domainsByVm.clear();
  }

  async perform(effect: Effect, ctx: EffectContext): Promise<Observation> {
    switch (effect.kind) {
      case 'VM_create':
        return this.create(effect);
      case 'VM_build': {
        // The kernel was given to QEMU at VM_create; the build sets the balloon to the dynamic maximum.
        const d = this.domain(effect.vmId);
        const config = this.configs.get(effect.vmId);
        if (config && config.memory_dynamic_max < config.memory_static_max) await d.execute('balloon', { value: config.memory_dynamic_max });
        return DONE;
      }
      case 'VM_create_device_model': {
        const d = this.domain(effect.vmId);
        const config = this.configs.get(effect.vmId);
        if (!effect.saveState && config?.ty[0] === 'HVM') {
          const bootable = [...d.devices.values()].some((r) => r.kind === 'vbd' || (r.kind === 'cd' && r.calls.some((c) => c.command === 'blockdev-change-medium')));
          if (!bootable) throw Errors.noBootableDevice();
          // No system_reset to refresh the firmware's boot order for the devices added while
          // prelaunch: under -action reboot=shutdown a QMP reset ends the process. SeaBIOS, not
          // strict, boots the first bootable disk it finds (disks are on root ports in plug order).
        }
        return DONE;
      }
      case 'VM_destroy_device_model':
        // The device model is the domain's own process: VM_destroy ends it.
        return DONE;
      case 'VM_pause':
      case 'VM_unpause':
        return this.pauseOrUnpause(effect.vmId, effect.kind === 'VM_pause', ctx.signal);
      case 'VM_shutdown_domain':
        return this.shutdownDomain(effect, ctx);
      case 'VM_destroy': {
        const d = this.domainsByVm.get(effect.vmId);
        if (!d) return DONE;
        if (this.incoming.get(effect.vmId)?.domain === d) this.incoming.delete(effect.vmId);
        await d.stop();
        this.domainsByVm.delete(effect.vmId);
        removeDomainFile(d.home);
        // A process that lived beside the VM's directory (a localhost migration's) leaves nothing behind.
        if (d.dir !== d.home) rmSync(d.dir, { recursive: true, force: true });
        this.log(`qemu: vm ${effect.vmId}: domain ${d.domid} destroyed`);
        return DONE;
      }
      case 'VM_save':
        return this.save(effect, ctx);
      case 'VM_restore':
        return this.restore(effect, ctx);
      case 'VM_migrate_send':
        return this.migrateSend(effect, ctx);
      case 'VM_migrate_receive':
        return this.migrateReceive(effect, ctx);
      case 'VM_set_vcpus':
        await this.setVcpus(effect.vmId, effect.vcpus);
        return DONE;
      case 'VM_set_memory_dynamic_range':
        await this.domain(effect.vmId).execute('balloon', { value: effect.maximum });
        return DONE;
      case 'VM_set_shadow_multiplier':
      case 'VM_set_xsdata':
        // Xen's shadow paging and xenstore have no QEMU counterpart: the log's record is all there is.
        return DONE;
      case 'VM_guest_request':
        if (effect.name === 'VM.s3resume') await this.domain(effect.vmId).execute('system_wakeup').catch(() => undefined);
        return DONE;
      case 'VM_run_script':
        throw Errors.unimplemented('VM.run_script on the QEMU backend');
      case 'VM_remove': {
        this.configs.delete(effect.vmId);
        if (this.host?.dataDir !== undefined && !this.domainsByVm.has(effect.vmId)) rmSync(domainDir(this.host.dataDir, effect.vmId), { recursive: true, force: true });
        return DONE;
      }
      case 'VBD_set_active':
      case 'VBD_epoch_begin':
      case 'VBD_epoch_end':
      case 'VIF_set_active':
        return DONE;
      case 'VBD_plug':
        await this.plugVbd(effect);
        return DONE;
      case 'VBD_unplug':
        await this.unplug(effect.vmId, effect.vbd.ty === 'CDROM' ? 'cd' : 'vbd', effect.vbd.id[1], effect.force, ctx);
        return DONE;
      case 'VBD_eject':
        if (effect.plugged) await this.eject(effect.vmId, effect.vbd.id[1]);
        return DONE;
      case 'VBD_insert':
        if (effect.plugged) await this.insert(effect.vmId, effect.vbd.id[1], diskPath(effect.disk, this.opts.srDir));
        return DONE;
      case 'VIF_plug': {
        const d = this.domain(effect.vmId);
        if (d.device('vif', effect.vif.id[1])) return DONE; // created again by a resume
        await d.addDevice(vifRecord(effect.vif, this.network, d.freePort()));
        return DONE;
      }
      case 'VIF_unplug':
        await this.unplug(effect.vmId, 'vif', effect.vif.id[1], effect.force, ctx);
        return DONE;
      case 'VIF_set': {
        if (!effect.plugged || effect.field !== 'carrier') return DONE; // the other fields have no QEMU counterpart
        const d = this.domain(effect.vmId);
        const record = d.device('vif', effect.vif.id[1]);
        if (!record) return DONE;
        await d.execute('set_link', { name: record.qdevId, up: effect.vif.carrier });
        d.replace(withCarrier(record, effect.vif.carrier));
        return DONE;
      }
      case 'PCI_plug': {
        const d = this.domain(effect.vmId);
        await d.addDevice(pciRecord(effect.pci, d.freePort()));
        return DONE;
      }
      case 'PCI_unplug':
        await this.unplug(effect.vmId, 'pci', effect.pci.id[1], false, ctx);
        return DONE;
    }
  }

  async domains(): Promise<readonly ObservedDomain[]> {
    const out: ObservedDomain[] = [];
    for (const [vmId, d] of this.domainsByVm) {
      const status = await d.status().catch(() => 'exited' as const);
      out.push({ vmId, domid: d.domid, paused: status === 'exited' ? d.paused : status !== 'running' });
    }
    return out;
  }

  async hostFacts(): Promise<HostFacts> {
    return readHostFacts(this.version, this.accel);
  }

  onDomainEvent(listener: (e: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The configuration each domain was created with (the build and device model read it). */
  private readonly configs = new Map<string, VmConfig>();
  /** Processes waiting for a migration's stream, by VM (one migration at a time per VM). */
  private readonly incoming = new Map<string, { readonly transferId: string; readonly domain: QemuDomain; readonly record: DomainRecord }>();

  private hooks() {
    return {
      logger: (line: string) => this.log(line),
      onGuestAction: (vmId: string, action: GuestAction) => {
        for (const l of this.listeners) l({ vmId, kind: 'guest', action });
      },
    };
  }

  private log(line: string): void {
    this.host?.logger(line);
  }

  private dataDir(): string {
    if (this.host?.dataDir === undefined) throw Errors.internal('the QEMU backend is not started');
    return this.host.dataDir;
  }

  private domain(vmId: string): QemuDomain {
    const d = this.domainsByVm.get(vmId);
    if (!d) throw Errors.domainDoesNotExist(vmId);
    return d;
  }

  private async create(effect: EffectOf<'VM_create'>): Promise<Observation> {
    const { vmId, config } = effect;
    // A migration's destination: the process that received the stream becomes the domain (again,
    // when the destination retries after its first attempt could not be written).
    const prepared = this.incoming.get(vmId);
    if (prepared && (!this.domainsByVm.has(vmId) || this.domainsByVm.get(vmId) === prepared.domain)) {
      this.domainsByVm.set(vmId, prepared.domain);
      prepared.domain.adopt();
      this.configs.set(vmId, config);
      this.log(`qemu: vm ${vmId}: domain ${prepared.domain.domid} created from the migration's QEMU process ${prepared.domain.process.pid}`);
      return { kind: 'created', domid: prepared.domain.domid, consoles: this.consoles(prepared.domain) };
    }
    if (this.domainsByVm.has(vmId)) throw Errors.alreadyExists('domain', vmId);
    const boot = bootOf(config);
    const available = availableMemoryBytes();
    if (available !== undefined && config.memory_static_max > available) throw Errors.notEnoughMemory(config.memory_static_max);
    const domid = this.domids.next();
    const dir = domainDir(this.dataDir(), vmId);
    const args = machineArgs(config, boot, domid % 1000, dir);
    const d = await QemuDomain.spawn(vmId, domid, dir, { binary: this.binary, accel: this.accel, args }, this.hooks());
    this.domainsByVm.set(vmId, d);
    this.configs.set(vmId, config);
    this.log(`qemu: vm ${vmId}: domain ${domid} created: QEMU process ${d.process.pid}, ${d.process.startupMs?.toFixed(0)} ms to QMP, VNC port ${d.vncPort}`);
    return { kind: 'created', domid, consoles: this.consoles(d) };
  }

  /** §8.4: the VNC display, then the serial console's Unix socket. */
  private consoles(d: QemuDomain): Console[] {
    return [
      { protocol: 'Rfb', port: d.vncPort, path: '' },
      { protocol: 'Vt100', port: 0, path: d.process.paths.serial },
    ];
  }

  private async pauseOrUnpause(vmId: string, pause: boolean, signal: AbortSignal): Promise<Observation> {
    const d = this.domain(vmId);
    const status = await d.status(signal);
    if (pause) {
      if (status === 'running') await d.execute('stop', undefined, { signal });
      d.paused = true;
    } else {
      if (status === 'paused' || status === 'prelaunch') {
        await d.execute('cont', undefined, { signal });
        this.log(`qemu: vm ${vmId}: domain ${d.domid} running`);
      }
      d.paused = false;
    }
    return DONE;
  }

  /**
   * §7.4 by ACPI: press the power button (again every 2 s: a press before the guest listens is
   * lost) until the process ends; the guest acknowledges by acting, so a guest that does not act
   * within the acknowledgement time did not acknowledge. A reboot is asked the same way: the
   * engine starts the domain again after the teardown.
   */
  private async shutdownDomain(effect: EffectOf<'VM_shutdown_domain'>, ctx: EffectContext): Promise<Observation> {
    const d = this.domain(effect.vmId);
    ctx.cancelPoint();
    if (d.process.hasExited) return { kind: 'shutdown', outcome: 'down' };
    d.expectingExit = true;
    const deadline = Date.now() + effect.ackTimeoutS * 1000;
    const exited = d.process.exited().then(() => true);
    try {
      for (;;) {
        await d.execute('system_powerdown').catch(() => undefined);
        const left = deadline - Date.now();
        const waited = await Promise.race([exited, delay(Math.max(0, Math.min(POWER_BUTTON_INTERVAL_MS, left)), ctx.signal).then(() => false)]);
        if (waited) {
          this.log(`qemu: vm ${effect.vmId}: domain ${d.domid}: the guest powered off on the ACPI power button (${effect.reason} requested)`);
          return { kind: 'shutdown', outcome: 'down' };
        }
        if (Date.now() >= deadline) break;
      }
    } finally {
      if (!d.process.hasExited) d.expectingExit = false;
    }
    this.log(`qemu: vm ${effect.vmId}: domain ${d.domid}: the guest did not act on the ACPI power button within ${effect.ackTimeoutS} s`);
    return { kind: 'shutdown', outcome: 'no-ack' };
  }

  /** VM_save: QEMU's migration stream of the paused domain, behind the header, written to a temporary file renamed into place. */
  private async save(effect: EffectOf<'VM_save'>, ctx: EffectContext): Promise<Observation> {
    const d = this.domain(effect.vmId);
    const path = diskPath(effect.disk, this.opts.srDir);
    ctx.cancelPoint();
    // QEMU needs nothing of the guest to save it: the request is acknowledged at once.
    ctx.markNonCancellable();
    if ((await d.status()) === 'running') await d.execute('stop');
    d.paused = true;
    await d.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await d.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 1024 ** 3 });
    const tmp = `${path}.${process.pid}.xenops-tmp`;
    const header = encodeHeader({ vm: effect.vmId, savedAt: new Date().toISOString(), record: effect.record, devices: [...d.devices.values()] });
    try {
      const file = await open(tmp, 'w', 0o600);
      await file.writeFile(header);
      await file.close();
    } catch (e) {
      throw Errors.internal(`cannot write the suspend image ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const started = Date.now();
    const ended = await d.eventAfter(
      'MIGRATION',
      (e) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)),
      () => d.execute('migrate', { uri: `exec:cat >> ${shellQuote(tmp)}` }),
      effect.timeoutS * 1000,
      ctx.signal,
    );
    if (!ended) {
      await d.execute('migrate_cancel').catch(() => undefined);
      await rm(tmp, { force: true });
      return { kind: 'saved', outcome: 'not-done' };
    }
    if (ended.data?.status !== 'completed') {
      const info = (await d.execute('query-migrate').catch(() => ({}))) as { 'error-desc'?: string };
      await rm(tmp, { force: true });
      throw Errors.internal(`suspend of VM ${effect.vmId} to ${path} failed: ${info['error-desc'] ?? String(ended.data?.status)}`);
    }
    const file = await open(tmp, 'r+');
    await file.sync();
    await file.close();
    await rename(tmp, path);
    this.log(`qemu: vm ${effect.vmId}: domain ${d.domid} saved to ${path} in ${Date.now() - started} ms`);
    return { kind: 'saved', outcome: 'written' };
  }

  /**
   * VM_restore: the image's header is checked first (a missing, corrupt or foreign image is
   * refused before the domain changes), then the domain's process is started again waiting for a
   * stream, given the image's devices, and fed the stream. It ends paused.
   */
  private async restore(effect: EffectOf<'VM_restore'>, ctx: EffectContext): Promise<Observation> {
    const path = diskPath(effect.disk, this.opts.srDir);
    const { header, streamOffset } = await readImageHeader(path, effect.vmId);
    const d = this.domain(effect.vmId);
    const started = Date.now();
    await d.respawnIncoming();
    d.expectingExit = true; // a stream QEMU cannot load makes it exit: that is this atom's failure, not the guest's
    try {
      await d.recreate(header.devices);
      await d.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      const ended = await d.eventAfter(
        'MIGRATION',
        (e) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)),
        () => d.execute('migrate-incoming', { uri: `exec:tail -c +${streamOffset + 1} ${shellQuote(path)}` }),
        600_000,
        ctx.signal,
      );
      if (ended?.data?.status !== 'completed') {
        throw Errors.internal(`suspend image ${path} is corrupt: QEMU could not load it (${ended ? String(ended.data?.status) : 'no answer'}${d.process.hasExited ? `; ${d.process.lastStderrLine()}` : ''})`);
      }
    } catch (e) {
      // A QEMU that could not load the stream holds nothing worth keeping (7.2 exits by itself).
      await d.stop().catch(() => undefined);
      this.domainsByVm.delete(effect.vmId);
      removeDomainFile(d.home);
      throw e;
    }
    d.expectingExit = false;
    d.paused = true;
    this.log(`qemu: vm ${effect.vmId}: domain ${d.domid} restored from ${path} in ${Date.now() - started} ms`);
    return { kind: 'restored', record: header.record };
  }

  /**
   * A migration's destination gets ready (§8.4): a process like the source's, its devices created
   * again, waiting for the stream on a TCP port of `migrationAddress`; the answer is that URI.
   */
  async prepareMigration(transfer: { readonly vmId: string; readonly transferId: string }, payload: unknown): Promise<unknown> {
    const { vmId, transferId } = transfer;
    const p = decodeMigrationPayload(payload, vmId);
    await this.abandonMigrationOf(vmId);
    const domid = this.domids.next();
    const home = domainDir(this.dataDir(), vmId);
    // A localhost migration: the source's process is in the VM's directory, the new one waits beside it.
    const dir = this.domainsByVm.has(vmId) ? join(qemuRoot(this.dataDir()), `migration-${transferId}`) : home;
    const args = machineArgs(p.config, bootOf(p.config), domid % 1000, dir);
    const d = await QemuDomain.spawn(vmId, domid, dir, { binary: this.binary, accel: this.accel, args }, this.hooks(), { incoming: true, home });
    try {
      d.expectingExit = true; // a stream QEMU cannot load makes it exit: the migration's failure, not the guest's
      await d.recreate(p.devices);
      await d.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      await d.execute('migrate-incoming', { uri: `tcp:${this.opts.migrationAddress ?? '127.0.0.1'}:0` });
      const uri = listeningUri(await queryMigrate(d), vmId);
      this.incoming.set(vmId, { transferId, domain: d, record: p.record });
      this.log(`qemu: vm ${vmId}: migration ${transferId}: QEMU process ${d.process.pid} (domain ${domid}) waits for the stream on ${uri}`);
      return { uri };
    } catch (e) {
      await this.discard(d);
      throw e;
    }
  }

  /** Stops a migration's process that never became the domain and removes what it left. */
  private async discard(d: QemuDomain): Promise<void> {
    await d.stop().catch(() => undefined);
    if (d.dir !== d.home) rmSync(d.dir, { recursive: true, force: true });
  }

  async abandonMigration(transferId: string): Promise<void> {
    for (const [vmId, p] of this.incoming) if (p.transferId === transferId) await this.abandonMigrationOf(vmId);
  }

  private async abandonMigrationOf(vmId: string): Promise<void> {
    const p = this.incoming.get(vmId);
    if (!p) return;
    this.incoming.delete(vmId);
    if (this.domainsByVm.get(vmId) === p.domain) return; // it became the domain: nothing to stop
    await this.discard(p.domain);
    this.log(`qemu: vm ${vmId}: migration ${p.transferId}: its destination process ${p.domain.process.pid} stopped (the migration did not pass here)`);
  }

  /**
   * VM_save(live) of a migration (§8.4): the destination gets ready, then QEMU migrates the
   * running guest to it over TCP; progress is QEMU's own RAM count. Cancelled before it completes,
   * the migration is called off and the guest runs on. Completed (the source is stopped in
   * postmigrate) is the point of no return.
   */
  private async migrateSend(effect: EffectOf<'VM_migrate_send'>, ctx: EffectContext): Promise<Observation> {
    const d = this.domain(effect.vmId);
    const link = this.host?.migration;
    if (!link) throw Errors.internal('this host cannot migrate: its agent gave the backend no migration link');
    ctx.cancelPoint();
    const transfer = { vmId: effect.vmId, transferId: effect.transferId };
    let uri: string;
    try {
      const answer = (await link.prepare(effect.destination, transfer, encodeMigrationPayload({ config: effect.config, devices: [...d.devices.values()], record: effect.record }), ctx.signal)) as { uri?: unknown };
      if (typeof answer?.uri !== 'string' || !answer.uri.startsWith('tcp:')) throw Errors.internal(`the destination answered no stream address (${JSON.stringify(answer)})`);
      uri = answer.uri;
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      this.log(`qemu: vm ${effect.vmId}: migration ${effect.transferId} to host ${effect.destination}: ${(e as Error).message}`);
      // The destination's own refusal says why; a destination that cannot be reached is §7.8's error.
      if (e instanceof XenopsError) throw e;
      throw new MigrationTransferError(effect.url, e);
    }
    // Cancelled while the destination got ready: nothing was sent (the destination drops what it prepared).
    if (ctx.signal.aborted) throw Errors.cancelled(effect.transferId);
    await d.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await d.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 1024 ** 3 });
    this.log(`qemu: vm ${effect.vmId}: domain ${d.domid}: migrating to host ${effect.destination} (${uri})`);
    const started = Date.now();
    const poll = setInterval(() => {
      void queryMigrate(d).then(
        (info) => {
          const f = ramFraction(info);
          if (f !== undefined && info.status === 'active') ctx.progress?.(Math.min(0.99, f));
        },
        () => undefined,
      );
    }, 250);
    let ended;
    try {
      ended = await d.eventAfter(
        'MIGRATION',
        (e) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)),
        () => d.execute('migrate', { uri }),
        SUSPEND_TIMEOUT_MS,
        ctx.signal,
      );
    } catch (e) {
      // Cancelled (or its limit passed): the guest was never stopped for good; it runs on here.
      await d.execute('migrate_cancel').catch(() => undefined);
      this.log(`qemu: vm ${effect.vmId}: domain ${d.domid}: migration to host ${effect.destination} called off: ${(e as Error).message}`);
      throw ctx.signal.aborted ? Errors.cancelled(effect.transferId) : e;
    } finally {
      clearInterval(poll);
    }
    const info = await queryMigrate(d).catch((): MigrateInfo => ({}));
    if (ended?.data?.status !== 'completed') {
      await d.execute('migrate_cancel').catch(() => undefined);
      if ((await d.status().catch(() => 'exited')) === 'postmigrate') await d.execute('cont').catch(() => undefined);
      throw new MigrationTransferError(effect.url, new Error(info['error-desc'] ?? `QEMU's migration ${ended ? String(ended.data?.status) : 'did not end'}`));
    }
    ctx.markNonCancellable();
    d.paused = true;
    this.log(`qemu: vm ${effect.vmId}: domain ${d.domid} migrated to host ${effect.destination} (${uri}) in ${Date.now() - started} ms, downtime ${info.downtime ?? '?'} ms`);
    return { kind: 'sent' };
  }

  /** The destination's VM_restore of a migration: the stream its process waited for has been loaded. */
  private async migrateReceive(effect: EffectOf<'VM_migrate_receive'>, ctx: EffectContext): Promise<Observation> {
    const p = this.incoming.get(effect.vmId);
    const d = this.domainsByVm.get(effect.vmId);
    if (!p || p.transferId !== effect.transferId || d !== p.domain) {
      throw Errors.internal(`VM ${effect.vmId}: no QEMU process of this host received migration ${effect.transferId}`);
    }
    for (let waited = 0; ; waited += 100) {
      const info = await queryMigrate(d);
      if (info.status === 'completed') break;
      if (info.status === 'failed' || info.status === 'cancelled' || d.process.hasExited || waited > 60_000) {
        throw Errors.internal(`VM ${effect.vmId}: the migration stream did not load (${info.status ?? 'no status'}${d.process.hasExited ? `; ${d.process.lastStderrLine()}` : ''})`);
      }
      await delay(100, ctx.signal);
    }
    // The entry stays (a retry finds the same process) until the domain is destroyed or migrated again.
    d.expectingExit = false;
    d.paused = true;
    d.persist();
    return { kind: 'restored', record: p.record };
  }

  private async setVcpus(vmId: string, target: number): Promise<void> {
    const d = this.domain(vmId);
    const cpus = (await d.execute('query-hotpluggable-cpus')) as { type: string; props: Record<string, number>; 'qom-path'?: string }[];
    const present = cpus.filter((c) => c['qom-path'] !== undefined);
    if (target > present.length) {
      const free = cpus.filter((c) => c['qom-path'] === undefined).slice(0, target - present.length);
      for (const c of free) {
        const key = `cpu${c.props['socket-id'] ?? 0}-${c.props['core-id'] ?? 0}-${c.props['thread-id'] ?? 0}`;
        await d.addDevice({ key, kind: 'cpu', qdevId: key, calls: [{ command: 'device_add', args: { driver: c.type, id: key, ...c.props } }] });
      }
    } else if (target < present.length) {
      const removable = [...d.devices.values()].filter((r) => r.kind === 'cpu').reverse();
      const count = present.length - target;
      if (removable.length < count) throw Errors.internal(`VM ${vmId}: only hot-plugged vCPUs can be removed (${removable.length} of them, ${count} asked)`);
      for (const r of removable.slice(0, count)) {
        await d.execute('device_del', { id: r.qdevId });
        d.forget('cpu', r.key);
      }
    }
  }

  private async plugVbd(effect: EffectOf<'VBD_plug'>): Promise<void> {
    const d = this.domain(effect.vmId);
    const { vbd } = effect;
    const dev = vbd.id[1];
    const bootable = this.configs.get(effect.vmId)?.ty[0] === 'HVM';
    if (vbd.ty === 'CDROM') {
      if (d.device('cd', dev)) return; // created again by a resume
      if (!d.device('controller', 'scsi0')) await d.addDevice(scsiController(d.freePort()));
      const medium = vbd.backend ? diskPath(vbd.backend, this.opts.srDir) : undefined;
      await d.addDevice(cdRecord(vbd, medium, effect.diskNumber, bootable));
      return;
    }
    if (d.device('vbd', dev)) return;
    if (!vbd.backend) throw Errors.storageBackendError('NO_DISK', [dev, `VBD ${dev} is a disk without a backend`]);
    await d.addDevice(diskRecord(vbd, diskPath(vbd.backend, this.opts.srDir), effect.diskNumber, d.freePort(), bootable));
  }

  /**
   * Hot-unplug: QEMU asks the guest to release the device and reports DEVICE_DELETED when it has.
   * Not released in time: Device_detach_rejected; forced (a teardown), the record goes anyway
   * (the device goes with the process).
   */
  private async unplug(vmId: string, kind: DeviceRecord['kind'], key: string, force: boolean, ctx: EffectContext): Promise<void> {
    const d = this.domainsByVm.get(vmId);
    const record = d?.device(kind, key);
    if (!d || !record) return;
    const running = (await d.status()) === 'running';
    const timeoutMs = !running ? 0 : force ? 2_000 : (this.opts.unplugTimeoutMs ?? 10_000);
    const deleted =
      timeoutMs === 0
        ? (await d.execute('device_del', { id: record.qdevId }).catch(() => undefined), undefined)
        : await d.eventAfter('DEVICE_DELETED', (e) => e.data?.device === record.qdevId, () => d.execute('device_del', { id: record.qdevId }), timeoutMs, ctx.signal);
    if (!deleted && !force) {
      throw Errors.deviceDetachRejected(kind === 'cd' ? 'vbd' : kind, key, running ? `the guest did not release it within ${timeoutMs / 1000} s` : 'the domain is not running');
    }
    if (deleted && record.backendId) {
      await d.execute(record.kind === 'vif' ? 'netdev_del' : 'blockdev-del', record.kind === 'vif' ? { id: record.backendId } : { 'node-name': record.backendId }).catch(() => undefined);
    }
    d.forget(kind, key);
  }

  private async medium(d: QemuDomain, qdevId: string): Promise<boolean> {
    const blocks = (await d.execute('query-block')) as { qdev?: string; inserted?: unknown }[];
    return blocks.some((b) => (b.qdev === qdevId || b.qdev?.endsWith(`/${qdevId}`)) && b.inserted !== undefined);
  }

  private async eject(vmId: string, dev: string): Promise<void> {
    const d = this.domain(vmId);
    const record = d.device('cd', dev);
    if (!record) return;
    if (!(await this.medium(d, record.qdevId))) throw Errors.mediaNotPresent();
    await d.execute('eject', { id: record.qdevId, force: true });
    d.replace({ ...record, calls: record.calls.filter((c) => c.command !== 'blockdev-change-medium') });
  }

  private async insert(vmId: string, dev: string, path: string): Promise<void> {
    const d = this.domain(vmId);
    const record = d.device('cd', dev);
    if (!record) return;
    if (await this.medium(d, record.qdevId)) throw Errors.mediaPresent();
    const call = changeMedium(record.qdevId, path);
    await d.execute(call.command, call.args);
    d.replace({ ...record, calls: [...record.calls.filter((c) => c.command !== 'blockdev-change-medium'), call] });
  }
}

/** Stops a QEMU process no VM owns: over its QMP socket if it answers, else by signal. */
async function stopOrphan(pid: number, dir: string): Promise<void> {
  try {
    const p = await QemuProcess.attach(dir, { timeoutMs: 2_000 });
    await p.stop({ quitTimeoutMs: 2_000, termTimeoutMs: 2_000, killTimeoutMs: 3_000 });
    return;
  } catch {
    /* not reachable over QMP: signals */
  }
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
    }
  }
}
