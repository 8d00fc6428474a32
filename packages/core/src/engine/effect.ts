import type { Console, DomainRecord, GuestAction, ShutdownReason } from '../events/event.js';
import type { HostInfo, Pci, Vbd, Vif, VmConfig } from '../idl/index.js';
import type { DiskRef, VifSettableField } from '../model/operation.js';

/**
 * What a backend is asked to do for one atom (xenopsd's `B.VM.*`, `B.VBD.*`, ...): the atom with
 * everything the engine decided for it (the configuration, the disk number, the VIF's new value,
 * the timeouts). The engine has already checked every domain rule; a backend only acts, and fails
 * only when the world does (a missing file, an emulator that does not start).
 */
export type Effect =
  | { readonly kind: 'VM_create'; readonly vmId: string; readonly config: VmConfig }
  | { readonly kind: 'VM_build'; readonly vmId: string; readonly force: boolean }
  | { readonly kind: 'VM_create_device_model'; readonly vmId: string; readonly saveState: boolean }
  | { readonly kind: 'VM_destroy_device_model'; readonly vmId: string }
  | { readonly kind: 'VM_pause'; readonly vmId: string }
  | { readonly kind: 'VM_unpause'; readonly vmId: string }
  /**
   * Ask the guest to power off or reboot (§7.4): wait for its acknowledgement up to
   * `ackTimeoutS`, then for the domain to go down until `shutdownTimeoutS` have passed.
   */
  | { readonly kind: 'VM_shutdown_domain'; readonly vmId: string; readonly reason: ShutdownReason; readonly ackTimeoutS: number; readonly shutdownTimeoutS: number }
  | { readonly kind: 'VM_destroy'; readonly vmId: string }
  /** Suspend the guest into the image on `disk`; `record` is the domain as the log knows it. */
  | { readonly kind: 'VM_save'; readonly vmId: string; readonly disk: DiskRef; readonly record: DomainRecord; readonly ackTimeoutS: number; readonly timeoutS: number }
  /** Restore the new domain from the image on `disk`; `logged` is what the log says the image holds. */
  | { readonly kind: 'VM_restore'; readonly vmId: string; readonly disk: DiskRef; readonly logged?: DomainRecord }
  /**
   * Live migration, source side (§7.8): the domain's state streamed to `destination`'s agent under
   * `transferId` (the task id); the domain keeps running. Once the destination has it all the
   * backend calls `markNonCancellable` (the point of no return).
   */
  | {
      readonly kind: 'VM_migrate_send';
      readonly vmId: string;
      readonly destination: string;
      readonly url: string;
      readonly transferId: string;
      readonly record: DomainRecord;
      readonly config: VmConfig;
    }
  /** Live migration, destination side: the new domain takes the state received under `transferId`. */
  | { readonly kind: 'VM_migrate_receive'; readonly vmId: string; readonly transferId: string }
  | { readonly kind: 'VM_set_vcpus'; readonly vmId: string; readonly vcpus: number }
  | { readonly kind: 'VM_set_shadow_multiplier'; readonly vmId: string; readonly multiplier: number }
  | { readonly kind: 'VM_set_memory_dynamic_range'; readonly vmId: string; readonly minimum: number; readonly maximum: number }
  | { readonly kind: 'VM_set_xsdata'; readonly vmId: string; readonly xsdata: ReadonlyArray<readonly [string, string]> }
  /** request_rdp, s3suspend, s3resume. */
  | { readonly kind: 'VM_guest_request'; readonly vmId: string; readonly name: string }
  | { readonly kind: 'VM_run_script'; readonly vmId: string; readonly script: string }
  /** The VM's record is being deleted: whatever the backend keeps for it goes. */
  | { readonly kind: 'VM_remove'; readonly vmId: string }
  | { readonly kind: 'VBD_set_active'; readonly vmId: string; readonly dev: string; readonly active: boolean }
  | { readonly kind: 'VBD_epoch_begin'; readonly vmId: string; readonly vbd: Vbd }
  | { readonly kind: 'VBD_epoch_end'; readonly vmId: string; readonly vbd: Vbd }
  | { readonly kind: 'VBD_plug'; readonly vmId: string; readonly vbd: Vbd; readonly diskNumber: number }
  | { readonly kind: 'VBD_unplug'; readonly vmId: string; readonly vbd: Vbd; readonly force: boolean }
  | { readonly kind: 'VBD_eject'; readonly vmId: string; readonly vbd: Vbd; readonly plugged: boolean }
  | { readonly kind: 'VBD_insert'; readonly vmId: string; readonly vbd: Vbd; readonly disk: DiskRef; readonly plugged: boolean }
  | { readonly kind: 'VIF_set_active'; readonly vmId: string; readonly dev: string; readonly active: boolean }
  | { readonly kind: 'VIF_plug'; readonly vmId: string; readonly vif: Vif }
  | { readonly kind: 'VIF_unplug'; readonly vmId: string; readonly vif: Vif; readonly force: boolean }
  /** A VIF setter: `vif` is the stored configuration with the new value; `plugged`: the live device changes too. */
  | { readonly kind: 'VIF_set'; readonly vmId: string; readonly field: VifSettableField; readonly vif: Vif; readonly plugged: boolean }
  | { readonly kind: 'PCI_plug'; readonly vmId: string; readonly pci: Pci }
  | { readonly kind: 'PCI_unplug'; readonly vmId: string; readonly pci: Pci };

export type EffectKind = Effect['kind'];
export type EffectOf<K extends EffectKind> = Extract<Effect, { kind: K }>;

/**
 * What a backend observed while performing an effect. Most effects report nothing but that they
 * happened; the others report what the engine cannot know in advance.
 */
export type Observation =
  | { readonly kind: 'done' }
  /** VM_create: the new domain's id and consoles. */
  | { readonly kind: 'created'; readonly domid: number; readonly consoles: readonly Console[] }
  /** VM_shutdown_domain: down in time, never acknowledged, or acknowledged but not down in time. */
  | { readonly kind: 'shutdown'; readonly outcome: 'down' | 'no-ack' | 'not-down' }
  /** VM_save: the image is written, or the guest never acknowledged, or never finished. */
  | { readonly kind: 'saved'; readonly outcome: 'written' | 'no-ack' | 'not-done' }
  /** VM_migrate_send: the destination has the whole state. */
  | { readonly kind: 'sent' }
  /** VM_restore, VM_migrate_receive: what the image held. */
  | { readonly kind: 'restored'; readonly record: DomainRecord }
  /** VM_run_script: its result (xenopsd's `{rc, stdout, stderr}`). */
  | { readonly kind: 'script'; readonly rc: number; readonly stdout: string; readonly stderr: string };

export const DONE: Observation = Object.freeze({ kind: 'done' });

/** A domain as a backend sees it (reconciliation at start). */
export interface ObservedDomain {
  readonly vmId: string;
  readonly domid: number;
  readonly paused: boolean;
}

/**
 * Something a domain did that nobody asked for (xenopsd's domain watches; QEMU's SHUTDOWN,
 * RESET, GUEST_PANICKED, STOP, RESUME events): the guest powered off, rebooted, crashed,
 * suspended or reset itself, or the domain was paused or resumed outside the engine.
 */
export type DomainEvent =
  | { readonly vmId: string; readonly kind: 'guest'; readonly action: GuestAction }
  | { readonly vmId: string; readonly kind: 'paused' | 'unpaused' };

/** What HOST.stat, HOST.get_total_memory_mib and HOST.get_console_data report (API.md §8.1, §8.4). */
export interface HostFacts {
  readonly host: HostInfo;
  readonly totalMemoryMib: number;
  readonly consoleData: string;
}
