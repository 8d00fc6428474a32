import type { Action } from '../idl/index.js';
import type { GuestAction } from '../events/event.js';

/**
 * Operations: what a task does to a VM. A task is created for one operation, queued on its VM
 * (API.md §7.2) and expanded into atoms by the actors package (§7.3).
 */
export type Operation = OperationBody & {
  /** Destroy the task record when it ends (S/q calls such as VM.remove, internal checks). */
  readonly autoDestroy?: boolean;
  /** DEBUG "set-cancel-trigger": the task cancels itself at this cancellation point (1-based). */
  readonly cancelAtPoint?: number;
};

/** A disk as the API encodes it: `['Local', path]` or `['VDI', '<SR>/<VDI>']`. */
export type DiskRef = readonly ['Local' | 'VDI', string];

export type OperationBody =
  /** `unpause`: the seed dialect's start also unpauses (the VM ends Running). */
  | { readonly kind: 'VM.start'; readonly paused: boolean; readonly unpause: boolean }
  /** `delay` absent: hard power-off. `fallbackToHard`: seed semantics of §7.4. */
  | { readonly kind: 'VM.shutdown'; readonly delay?: number; readonly fallbackToHard: boolean }
  | { readonly kind: 'VM.reboot'; readonly delay?: number; readonly fallbackToHard: boolean }
  | { readonly kind: 'VM.suspend'; readonly disk: DiskRef }
  | { readonly kind: 'VM.resume'; readonly disk: DiskRef; readonly unpause: boolean }
  | { readonly kind: 'VM.pause' }
  | { readonly kind: 'VM.unpause' }
  | { readonly kind: 'VM.remove' }
  | { readonly kind: 'VM.create' }
  | { readonly kind: 'VM.build'; readonly force: boolean }
  | { readonly kind: 'VM.create_device_model'; readonly saveState: boolean }
  | { readonly kind: 'VM.destroy' }
  | { readonly kind: 'VM.set_vcpus'; readonly vcpus: number }
  | { readonly kind: 'VM.set_shadow_multiplier'; readonly multiplier: number }
  | { readonly kind: 'VM.set_memory_dynamic_range'; readonly minimum: number; readonly maximum: number }
  | { readonly kind: 'VM.set_xsdata'; readonly xsdata: ReadonlyArray<readonly [string, string]> }
  | { readonly kind: 'VM.delay'; readonly delay: number }
  | { readonly kind: 'VM.request_rdp'; readonly enabled: boolean }
  | { readonly kind: 'VM.run_script'; readonly script: string }
  | { readonly kind: 'VM.s3suspend' }
  | { readonly kind: 'VM.s3resume' }
  /**
   * VM.migrate / seed Vm.migrate (§7.8): `destination` is the host `url` resolved to; the maps are
   * applied to the stored configuration at the switch-over. `vdiMap` pairs source and destination
   * VDI names; `vifMapJson` and `pciMapJson` are JSON objects from a VIF's (VGPU's) device name to
   * its new backend (physical PCI address) in the internal encoding.
   */
  | {
      readonly kind: 'VM.migrate';
      readonly url: string;
      readonly destination: string;
      readonly vdiMap: ReadonlyArray<readonly [string, string]>;
      readonly vifMapJson: string;
      readonly pciMapJson: string;
    }
  /**
   * HOST.evacuate (§9.7): a gateway runs it, starting one VM.migrate task per VM of `host`; its
   * task lives on the log's `task/evacuations` stream (`vmId` empty), never on a VM's queue.
   */
  | { readonly kind: 'HOST.evacuate'; readonly host: string }
  /** VM.import_metadata(_async): `metadataJson` is the Metadata.t document in the internal encoding. */
  | { readonly kind: 'VM.import_metadata'; readonly metadataJson: string }
  | { readonly kind: 'VBD.plug'; readonly dev: string }
  | { readonly kind: 'VBD.unplug'; readonly dev: string; readonly force: boolean }
  | { readonly kind: 'VBD.eject'; readonly dev: string }
  | { readonly kind: 'VBD.insert'; readonly dev: string; readonly disk: DiskRef }
  | { readonly kind: 'VIF.plug'; readonly dev: string }
  | { readonly kind: 'VIF.unplug'; readonly dev: string; readonly force: boolean }
  /** VIF.move and VIF.set_*: one field of the Vif.t, `valueJson` in the internal encoding. */
  | { readonly kind: 'VIF.set'; readonly dev: string; readonly field: VifSettableField; readonly valueJson: string }
  /** Internal: carry out the VM's action list after the guest asked for `action` (§7.5). */
  | { readonly kind: 'VM.guest_action'; readonly action: GuestAction; readonly actions: readonly Action[] }
  /** Internal: put the VM back into a consistent state after a failure or a restart (§7.3). */
  | { readonly kind: 'VM.check_state'; readonly reason: string };

export type OperationKind = OperationBody['kind'];

export class OperationDecodeError extends Error {
  override readonly name = 'OperationDecodeError';
}

type FieldKind = 'bool' | 'int' | 'number' | 'number?' | 'string' | 'disk' | 'pairs' | 'actions' | 'vif-field';

/** The Vif.t fields that VIF.move and the VIF.set_* calls change (§7.6). */
export const VIF_SETTABLE_FIELDS = ['backend', 'carrier', 'locking_mode', 'ipv4_configuration', 'ipv6_configuration', 'pvs_proxy', 'trunks'] as const;
export type VifSettableField = (typeof VIF_SETTABLE_FIELDS)[number];

/** The arguments of each operation, for validating operations that crossed a process boundary. */
const FIELDS: Record<OperationKind, Record<string, FieldKind>> = {
  'VM.start': { paused: 'bool', unpause: 'bool' },
  'VM.shutdown': { delay: 'number?', fallbackToHard: 'bool' },
  'VM.reboot': { delay: 'number?', fallbackToHard: 'bool' },
  'VM.suspend': { disk: 'disk' },
  'VM.resume': { disk: 'disk', unpause: 'bool' },
  'VM.pause': {},
  'VM.unpause': {},
  'VM.remove': {},
  'VM.create': {},
  'VM.build': { force: 'bool' },
  'VM.create_device_model': { saveState: 'bool' },
  'VM.destroy': {},
  'VM.set_vcpus': { vcpus: 'int' },
  'VM.set_shadow_multiplier': { multiplier: 'number' },
  'VM.set_memory_dynamic_range': { minimum: 'int', maximum: 'int' },
  'VM.set_xsdata': { xsdata: 'pairs' },
  'VM.delay': { delay: 'number' },
  'VM.request_rdp': { enabled: 'bool' },
  'VM.run_script': { script: 'string' },
  'VM.s3suspend': {},
  'VM.s3resume': {},
  'VM.migrate': { url: 'string', destination: 'string', vdiMap: 'pairs', vifMapJson: 'string', pciMapJson: 'string' },
  'HOST.evacuate': { host: 'string' },
  'VM.guest_action': { action: 'string', actions: 'actions' },
  'VM.import_metadata': { metadataJson: 'string' },
  'VBD.plug': { dev: 'string' },
  'VBD.unplug': { dev: 'string', force: 'bool' },
  'VBD.eject': { dev: 'string' },
  'VBD.insert': { dev: 'string', disk: 'disk' },
  'VIF.plug': { dev: 'string' },
  'VIF.unplug': { dev: 'string', force: 'bool' },
  'VIF.set': { dev: 'string', field: 'vif-field', valueJson: 'string' },
  'VM.check_state': { reason: 'string' },
};

const ACTIONS = new Set(['Coredump', 'Shutdown', 'Start', 'Pause', 'Softreboot']);

function valid(kind: FieldKind, v: unknown): boolean {
  switch (kind) {
    case 'bool':
      return typeof v === 'boolean';
    case 'int':
      // The API's ints are JavaScript-safe (§0); the log's int64 fields could not read others back.
      return Number.isSafeInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'number?':
      return v === undefined || (typeof v === 'number' && Number.isFinite(v));
    case 'string':
      return typeof v === 'string';
    case 'disk':
      return Array.isArray(v) && v.length === 2 && (v[0] === 'Local' || v[0] === 'VDI') && typeof v[1] === 'string';
    case 'pairs':
      return Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
    case 'actions':
      return Array.isArray(v) && v.every((a) => typeof a === 'string' && ACTIONS.has(a));
    case 'vif-field':
      return typeof v === 'string' && (VIF_SETTABLE_FIELDS as readonly string[]).includes(v);
  }
}

/** Validates an operation that crossed a process boundary (log or bus). */
export function decodeOperation(v: unknown): Operation {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OperationDecodeError('operation is not an object');
  const o = v as Record<string, unknown>;
  const kind = o.kind as OperationKind;
  // Own keys only: `__proto__` or `toString` is no operation.
  const fields = typeof kind === 'string' && Object.hasOwn(FIELDS, kind) ? FIELDS[kind] : undefined;
  if (!fields) throw new OperationDecodeError(`unknown operation ${JSON.stringify(o.kind)}`);
  const out: Record<string, unknown> = { kind };
  for (const [name, fieldKind] of Object.entries(fields)) {
    if (!valid(fieldKind, o[name])) throw new OperationDecodeError(`malformed operation ${kind}: ${name}`);
    if (o[name] !== undefined) out[name] = o[name];
  }
  if (o.autoDestroy !== undefined) {
    if (typeof o.autoDestroy !== 'boolean') throw new OperationDecodeError('malformed operation: autoDestroy');
    out.autoDestroy = o.autoDestroy;
  }
  if (o.cancelAtPoint !== undefined) {
    if (!Number.isSafeInteger(o.cancelAtPoint) || (o.cancelAtPoint as number) < 1) throw new OperationDecodeError('malformed operation: cancelAtPoint');
    out.cancelAtPoint = o.cancelAtPoint;
  }
  return out as Operation;
}
