/**
 * Placement of VM.start / VM.resume of an unowned VM (API.md §9.7): an explicit host wins, else
 * the gateway's policy. `local` is §7.11's rule (the gateway's own host); `least-loaded` picks the
 * Up host with the most free memory that fits the VM, then the fewest running VMs.
 */
import { Errors, XenopsError, type VmConfig } from '@xenops/core';
import { hostRecords, type HostView } from './host-records.js';

export type PlacementPolicy = 'local' | 'least-loaded';
export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ['local', 'least-loaded'];

export interface Placement {
  readonly host: string;
  /** Why this host: logged with the placement. */
  readonly reason: string;
}

/** A placement that cannot be made; reported through the call's task like an unroutable one. */
export class PlacementError extends XenopsError {
  constructor(
    value: XenopsError['value'],
    /** The host the task is recorded for. */
    readonly host: string,
  ) {
    super(value);
  }
}

/** An id as an error message may show it: on one line and well-formed (escaped as in JSON otherwise). */
export function printable(id: string): string {
  return /[\u0000-\u001f\u007f]/.test(id) || !id.isWellFormed() ? JSON.stringify(id).slice(1, -1) : id;
}

export async function place(
  view: HostView & { readonly hostId: string; readonly placement: PlacementPolicy },
  vm: VmConfig,
  explicitHost: string | undefined,
): Promise<Placement> {
  if (explicitHost !== undefined) {
    const record = (await hostRecords(view)).find((h) => h.id === explicitHost);
    if (!record || record.state !== 'Up') throw new PlacementError(['Internal_error', `host ${printable(explicitHost)} is not available`], explicitHost);
    return { host: explicitHost, reason: 'explicit host of the call' };
  }
  if (view.placement === 'local') return { host: view.hostId, reason: "policy local: this gateway's host" };
  const need = vm.memory_static_max;
  const fits = (await hostRecords(view))
    .filter((h) => h.state === 'Up' && h.memory_free >= need)
    .sort((a, b) => b.memory_free - a.memory_free || a.running - b.running || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const best = fits[0];
  if (!best) throw new PlacementError(Errors.notEnoughMemory(need).value, view.hostId);
  return { host: best.id, reason: `policy least-loaded: ${best.memory_free} bytes free (VM needs ${need}), ${best.running} running` };
}
