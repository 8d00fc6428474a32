import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Errors, type GuestAction } from '@xenops/core';
import { EmulatorStartError, QemuProcess, type QemuAccel, type QemuRunState, type QmpEvent } from '../../backends/qemu/index.js';
import { writeDomainFile, type DeviceRecord } from './domain-files.js';
import { ROOT_PORTS } from './machine.js';

export interface DomainHooks {
  readonly logger: (line: string) => void;
  /** The guest did something by itself (§7.5); `cause` says what QEMU reported. */
  readonly onGuestAction: (vmId: string, action: GuestAction, cause: string) => void;
}

export interface SpawnSpec {
  readonly binary: string;
  readonly accel: QemuAccel;
  readonly args: readonly string[];
}

const VNC_BASE = 5900;

/**
 * One domain: its QEMU process, the devices the backend added to it (each on its own root port)
 * and the watch of QMP events that turns a guest's own power-off, reboot or panic into a guest
 * action. Everything needed to re-attach is written to `domain.json` in its directory.
 */
export class QemuDomain {
  /** Devices by `<kind>:<key>`, in the order they were added (the order a resume creates them again). */
  readonly devices = new Map<string, DeviceRecord>();
  /** The engine asked for the process to end (shutdown, destroy, restore): its exit is no guest action. */
  expectingExit = false;
  /** Paused as far as this backend knows (QEMU's run state is asked when it matters). */
  paused = true;
  private reportedExit = false;
  private unwatch: () => void = () => {};
  /** Whether domain.json follows this domain: not while it only waits for a migration (it is no domain yet). */
  private persisting = true;

  private constructor(
    readonly vmId: string,
    readonly domid: number,
    /** Where the process and its sockets are. */
    readonly dir: string,
    private proc: QemuProcess,
    public vncPort: number,
    private readonly spec: SpawnSpec | undefined,
    private readonly hooks: DomainHooks,
    /** The VM's own directory: domain.json and serial.log (the same as `dir` but after a localhost migration). */
    readonly home: string = dir,
  ) {
    this.watch();
  }

  get process(): QemuProcess {
    return this.proc;
  }

  /** Spawns the domain's QEMU, paused; `Failed_to_start_emulator` when it does not come up. */
  /**
   * `incoming`: a migration's destination, waiting for the stream (`migrate-incoming`); it is
   * written to domain.json only once it becomes the domain (`adopt`). `home`: the VM's directory
   * when the process lives elsewhere (a localhost migration).
   */
  static async spawn(
    vmId: string,
    domid: number,
    dir: string,
    spec: SpawnSpec,
    hooks: DomainHooks,
    opts: { readonly incoming?: boolean; readonly home?: string } = {},
  ): Promise<QemuDomain> {
    const home = opts.home ?? dir;
    const proc = await startProcess(vmId, dir, spec, opts.incoming ? ['-incoming', 'defer'] : [], join(home, 'serial.log'));
    const domain = new QemuDomain(vmId, domid, dir, proc, 0, spec, hooks, home);
    domain.persisting = !opts.incoming;
    domain.vncPort = await domain.readVncPort();
    domain.persist();
    return domain;
  }

  /** A migration's process becomes the VM's domain: from now on domain.json is its. */
  adopt(): void {
    this.persisting = true;
    this.persist();
  }

  /** Takes over a running QEMU a previous agent started (its devices as domain.json recorded them). */
  static async attach(vmId: string, domid: number, dir: string, vncPort: number, devices: readonly DeviceRecord[], hooks: DomainHooks, home: string = dir): Promise<QemuDomain> {
    const proc = await QemuProcess.attach(dir);
    const domain = new QemuDomain(vmId, domid, dir, proc, vncPort, undefined, hooks, home);
    for (const d of devices) domain.devices.set(`${d.kind}:${d.key}`, d);
    domain.paused = (await domain.status()) !== 'running';
    return domain;
  }

  /**
   * Ends the process and starts it again with `-incoming defer` in the same directory, on the same
   * VNC display, for a resume: then the devices of the image are created and the stream loaded.
   */
  async respawnIncoming(): Promise<void> {
    if (!this.spec) throw Errors.internal(`VM ${this.vmId}: a domain this agent re-attached cannot be restored into; destroy it first`);
    this.expectingExit = true;
    await this.proc.stop({ quitTimeoutMs: 3_000, termTimeoutMs: 2_000, killTimeoutMs: 3_000 });
    this.unwatch();
    const display = this.vncPort - VNC_BASE;
    const args = this.spec.args.map((a) => (a.startsWith('127.0.0.1:') ? `127.0.0.1:${display},to=${display + 1000}` : a));
    this.proc = await startProcess(this.vmId, this.dir, { ...this.spec, args }, ['-incoming', 'defer'], join(this.home, 'serial.log'));
    this.reportedExit = false;
    this.watch();
    this.vncPort = await this.readVncPort();
    this.devices.clear();
    this.persist();
  }

  persist(): void {
    if (!this.persisting) return;
    const elsewhere = this.dir !== this.home ? { dir: this.dir } : {};
    writeDomainFile(this.home, { vmId: this.vmId, domid: this.domid, vncPort: this.vncPort, devices: [...this.devices.values()], ...elsewhere });
  }

  execute(command: string, args?: Record<string, unknown>, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<unknown> {
    if (this.proc.hasExited) return Promise.reject(Errors.internal(`VM ${this.vmId}: the QEMU process of domain ${this.domid} has exited`));
    return this.proc.qmp.execute(command, args, options);
  }

  /** QEMU's run state; 'exited' when the process is gone. A QEMU that does not answer fails (timeout, or `signal`). */
  async status(signal?: AbortSignal): Promise<QemuRunState | 'exited'> {
    if (this.proc.hasExited || !this.proc.qmp.isOpen) return 'exited';
    try {
      return ((await this.proc.qmp.execute('query-status', undefined, { timeoutMs: 10_000, ...(signal ? { signal } : {}) })) as { status: QemuRunState }).status;
    } catch (e) {
      if (this.proc.hasExited || !this.proc.qmp.isOpen) return 'exited';
      throw Errors.internal(`VM ${this.vmId}: the QEMU process ${this.proc.pid} of domain ${this.domid} does not answer: ${(e as Error).message}`);
    }
  }

  /** Waits for a QMP event (registered before `action` runs, so a fast reply is not missed). */
  async eventAfter(name: string, predicate: (e: QmpEvent) => boolean, action: () => Promise<unknown>, timeoutMs: number, signal: AbortSignal): Promise<QmpEvent | undefined> {
    const waiting = this.proc.qmp.waitForEvent(name, { predicate, timeoutMs, signal }).then(
      (e) => e,
      (err: unknown) => {
        if (signal.aborted) throw err;
        return undefined;
      },
    );
    try {
      await action();
    } catch (err) {
      void waiting.catch(() => undefined);
      throw err;
    }
    return waiting;
  }

  /** Creates a device (its QMP calls in order) and records it. */
  async addDevice(record: DeviceRecord): Promise<void> {
    for (const call of record.calls) await this.execute(call.command, call.args);
    this.devices.set(`${record.kind}:${record.key}`, record);
    this.persist();
  }

  /** Replays recorded devices into a fresh process (resume). */
  async recreate(records: readonly DeviceRecord[]): Promise<void> {
    for (const r of records) await this.addDevice(r);
  }

  forget(kind: DeviceRecord['kind'], key: string): void {
    this.devices.delete(`${kind}:${key}`);
    this.persist();
  }

  device(kind: DeviceRecord['kind'], key: string): DeviceRecord | undefined {
    return this.devices.get(`${kind}:${key}`);
  }

  replace(record: DeviceRecord): void {
    this.devices.set(`${record.kind}:${record.key}`, record);
    this.persist();
  }

  /** The first root port no device of this domain uses. */
  freePort(): string {
    const used = new Set([...this.devices.values()].map((d) => d.port));
    for (let i = 1; i <= ROOT_PORTS; i++) if (!used.has(`rp${i}`)) return `rp${i}`;
    throw Errors.internal(`VM ${this.vmId}: all ${ROOT_PORTS} PCIe root ports of domain ${this.domid} are in use`);
  }

  /** Ends the process: QMP quit, then signals (§8.4). */
  async stop(): Promise<void> {
    this.expectingExit = true;
    await this.proc.stop({ quitTimeoutMs: 3_000, termTimeoutMs: 2_000, killTimeoutMs: 3_000 });
    this.unwatch();
  }

  /** Lets the process run on without this agent. */
  async detach(): Promise<void> {
    this.unwatch();
    await this.proc.detach();
  }

  private async readVncPort(): Promise<number> {
    const vnc = (await this.execute('query-vnc')) as { enabled?: boolean; service?: string };
    const port = Number(vnc.service);
    return vnc.enabled && Number.isInteger(port) ? port : 0;
  }

  private watch(): void {
    const proc = this.proc;
    const onEvent = (e: QmpEvent) => this.onEvent(e);
    proc.qmp.on('event', onEvent);
    let active = true;
    void proc.exited().then((exit) => {
      if (!active || this.proc !== proc || this.expectingExit || this.reportedExit) return;
      this.reportedExit = true;
      // QEMU's "VNC server running on ..." notice is no reason.
      const line = proc.lastStderrLine();
      const why = line === '' || line.startsWith('VNC server running') ? 'no error line' : line;
      this.report('crash', `the QEMU process ${proc.pid} exited by itself (${exit.signal ?? `code ${exit.code}`}): ${why}`);
    });
    this.unwatch = () => {
      active = false;
      proc.qmp.off('event', onEvent);
    };
  }

  private onEvent(e: QmpEvent): void {
    const data = e.data ?? {};
    if (e.event === 'STOP') this.paused = true;
    if (e.event === 'RESUME') this.paused = false;
    if (this.expectingExit) return;
    if (e.event === 'SHUTDOWN' && data.guest === true) {
      this.reportedExit = true;
      const reason = String(data.reason);
      const action: GuestAction = reason === 'guest-reset' ? 'reboot' : reason === 'guest-panic' ? 'crash' : 'halt';
      this.report(action, `QMP SHUTDOWN (guest, reason ${reason})`);
    } else if (e.event === 'GUEST_PANICKED') {
      this.reportedExit = true;
      this.report('crash', `QMP GUEST_PANICKED (action ${String(data.action)})`);
    } else if (e.event === 'RESET' && data.guest === true && !this.reportedExit) {
      this.reportedExit = true;
      this.report('reboot', `QMP RESET (guest, reason ${String(data.reason)})`);
    }
  }

  private report(action: GuestAction, cause: string): void {
    this.hooks.logger(`qemu: vm ${this.vmId}: domain ${this.domid}: guest ${action}: ${cause}`);
    this.hooks.onGuestAction(this.vmId, action, cause);
  }
}

async function startProcess(vmId: string, dir: string, spec: SpawnSpec, extra: readonly string[], serialLog: string): Promise<QemuProcess> {
  try {
    return await QemuProcess.start({ dir, serialLog, binary: spec.binary, accel: spec.accel, args: [...spec.args, ...extra], name: `xenops-${vmId}`, detached: true, startTimeoutMs: 60_000 });
  } catch (e) {
    if (e instanceof EmulatorStartError) throw Errors.failedToStartEmulator(vmId, 'qemu', e.stderrLine || e.message);
    throw e;
  }
}

/** Quotes a word for /bin/sh (QEMU's `exec:` migration URIs run through it). */
export const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

export const delay = (ms: number, signal: AbortSignal): Promise<void> => sleep(ms, undefined, { signal });
