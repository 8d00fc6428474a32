import type { DiskRef, VifSettableField } from '../model/operation.js';

/**
 * Atoms: the indivisible backend steps of API.md §7.3. An operation is a list of atoms; a backend
 * implements atoms only.
 */
export type Atom =
  | { readonly kind: 'VM_create' }
  | { readonly kind: 'VM_build'; readonly force: boolean }
  | { readonly kind: 'VM_create_device_model'; readonly saveState: boolean }
  | { readonly kind: 'VM_destroy_device_model' }
  | { readonly kind: 'VM_pause'; readonly bestEffort?: boolean }
  | { readonly kind: 'VM_unpause' }
  | { readonly kind: 'VM_mark_survivable' }
  | { readonly kind: 'VM_shutdown_domain'; readonly reason: 'poweroff' | 'reboot'; readonly delay: number }
  | { readonly kind: 'VM_destroy' }
  | { readonly kind: 'VM_save'; readonly disk: DiskRef }
  | { readonly kind: 'VM_restore'; readonly disk: DiskRef }
  | { readonly kind: 'VM_drop_suspend_image' }
  /**
   * Migration, source side (§7.8): the live save, streamed to `destination`'s agent; its
   * acknowledgement is the point of no return. Shown as `VM_save(live)`.
   */
  | { readonly kind: 'VM_migrate_send'; readonly destination: string; readonly url: string }
  /**
   * The switch-over: the maps rewrite the stored configuration and the VM passes to `destination`
   * (one message). `progress`: how much of the task is done at this point; `wasPaused`: the power
   * state the migration keeps.
   */
  | {
      readonly kind: 'VM_migrate_handover';
      readonly destination: string;
      readonly progress: number;
      readonly vdiMap: ReadonlyArray<readonly [string, string]>;
      readonly vifMapJson: string;
      readonly pciMapJson: string;
    }
  /** Migration, destination side: the new domain restored from the received state. Shown as `VM_restore`. */
  | { readonly kind: 'VM_migrate_receive' }
  | { readonly kind: 'VM_set_vcpus'; readonly vcpus: number }
  | { readonly kind: 'VM_set_shadow_multiplier'; readonly multiplier: number }
  | { readonly kind: 'VM_set_memory_dynamic_range'; readonly minimum: number; readonly maximum: number }
  | { readonly kind: 'VM_set_xsdata'; readonly xsdata: ReadonlyArray<readonly [string, string]> }
  | { readonly kind: 'VM_delay'; readonly seconds: number }
  /** request_rdp, s3suspend, s3resume: accepted, no effect in the simulator. */
  | { readonly kind: 'VM_noop'; readonly name: string }
  | { readonly kind: 'VM_run_script'; readonly script: string }
  | { readonly kind: 'VM_remove' }
  /** Writes an imported Metadata.t (internal encoding); the task's result is the VM id. */
  | { readonly kind: 'VM_import_metadata'; readonly metadataJson: string }
  | { readonly kind: 'VBD_set_active'; readonly dev: string; readonly active: boolean }
  | { readonly kind: 'VBD_epoch_begin'; readonly dev: string }
  /** `reserved`: explicit disk numbers of the other VBDs the same operation plugs (auto-numbering, §7.6). */
  | { readonly kind: 'VBD_plug'; readonly dev: string; readonly reserved: readonly number[] }
  | { readonly kind: 'VBD_unplug'; readonly dev: string; readonly force: boolean }
  | { readonly kind: 'VBD_epoch_end'; readonly dev: string }
  | { readonly kind: 'VBD_eject'; readonly dev: string }
  | { readonly kind: 'VBD_insert'; readonly dev: string; readonly disk: DiskRef }
  | { readonly kind: 'VIF_set_active'; readonly dev: string; readonly active: boolean }
  | { readonly kind: 'VIF_plug'; readonly dev: string }
  | { readonly kind: 'VIF_unplug'; readonly dev: string; readonly force: boolean }
  | { readonly kind: 'VIF_set'; readonly dev: string; readonly field: VifSettableField; readonly valueJson: string }
  | { readonly kind: 'PCI_plug'; readonly dev: string }
  | { readonly kind: 'PCI_unplug'; readonly dev: string };

export type AtomKind = Atom['kind'];

/** Progress weight (§7.1): VM_save and VM_restore weigh 10, every other atom 1. */
export function atomWeight(atom: Atom): number {
  return atom.kind === 'VM_save' || atom.kind === 'VM_restore' || atom.kind === 'VM_migrate_send' || atom.kind === 'VM_migrate_receive' ? 10 : 1;
}

/** Atoms that may wait (for the guest, or a delay): what the task did so far is written first. */
export function atomMayWait(atom: Atom): boolean {
  return atom.kind === 'VM_shutdown_domain' || atom.kind === 'VM_delay' || atom.kind === 'VM_save' || atom.kind === 'VM_migrate_send';
}

export function describeAtom(atom: Atom): string {
  switch (atom.kind) {
    case 'VM_build':
      return `VM_build(${atom.force})`;
    case 'VM_create_device_model':
      return `VM_create_device_model(${atom.saveState})`;
    case 'VM_shutdown_domain':
      return `VM_shutdown_domain(${atom.reason}, ${atom.delay})`;
    case 'VM_save':
    case 'VM_restore':
      return `${atom.kind}(${atom.disk[0]} ${atom.disk[1]})`;
    case 'VM_noop':
      return atom.name;
    case 'VM_migrate_send':
      return `VM_save(live, to ${atom.destination})`;
    case 'VM_migrate_handover':
      return `switch-over to ${atom.destination}`;
    case 'VM_migrate_receive':
      return 'VM_restore(migration)';
    case 'VBD_set_active':
    case 'VIF_set_active':
      return `${atom.kind}(${atom.dev}, ${atom.active})`;
    case 'VIF_set':
      return `VIF_set_${atom.field}(${atom.dev})`;
    case 'VBD_plug':
    case 'VBD_unplug':
    case 'VBD_epoch_begin':
    case 'VBD_epoch_end':
    case 'VBD_eject':
    case 'VBD_insert':
    case 'VIF_plug':
    case 'VIF_unplug':
    case 'PCI_plug':
    case 'PCI_unplug':
      return `${atom.kind}(${atom.dev})`;
    default:
      return atom.kind;
  }
}
