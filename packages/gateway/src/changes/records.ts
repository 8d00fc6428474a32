/**
 * Change records (API.md §9.4): for each object a message changed, its full value after the
 * change (`Dynamic.t`, xenopsd encoding) with the audit fields of the event that changed it.
 *
 * One record per object per message: all events of a message share its seq, so the value "as of
 * that seq" is the value after the whole message (a task that ends and is destroyed by one write
 * yields one removal record). One message can yield several records (VM and devices, tasks).
 */
import {
  compareDynamicIds,
  DynamicIdT,
  DynamicT,
  dynamicIdKey,
  dynamicIdsOf,
  escapeSubjectToken,
  traceparentOfDbg,
  wireToJson,
  vmOfDynamicId,
  type DeviceKind,
  type DynamicChange,
  type DynamicId,
  type WireOut,
} from '@xenops/core';
import type { FoldStep } from '../read-model/projection.js';
import { devicePair } from '../read-model/device-views.js';
import { taskViewOf, vmStateOf } from '../read-model/views.js';

export type ChangeKind = 'vm' | 'vbd' | 'vif' | 'pci' | 'vgpu' | 'vusb' | 'task';

export const CHANGE_KINDS: readonly ChangeKind[] = ['vm', 'vbd', 'vif', 'pci', 'vgpu', 'vusb', 'task'];

export interface ChangeRecord {
  readonly seq: number;
  readonly kind: ChangeKind;
  readonly id: DynamicId;
  /** The VM of a VM or device record (for `?vm=`); undefined for tasks. */
  readonly vmId: string | undefined;
  /** The record as compact JSON (SSE `data:` and the NATS payload). */
  readonly json: string;
  /** `xenops.updates.<kind>.<id tokens>`. */
  readonly subject: string;
}

const kindOf = (id: DynamicId): ChangeKind => id[0].toLowerCase() as ChangeKind;

/** Every change record's subject starts with this token pair (§9.4); not namespaced by the prefix. */
export const CHANGE_SUBJECT_ROOT = 'xenops.updates';

/** NATS subject of a record (§9.4): device ids are two tokens, each part escaped. */
export function changeSubject(id: DynamicId): string {
  const [tag, arg] = id;
  const tokens = typeof arg === 'string' ? escapeSubjectToken(arg) : `${escapeSubjectToken(arg[0])}.${escapeSubjectToken(arg[1])}`;
  return `${CHANGE_SUBJECT_ROOT}.${tag.toLowerCase()}.${tokens}`;
}

/** The `Dynamic.t` of an object after `step` (None when it was removed). */
function changeValue(id: DynamicId, step: FoldStep, removed: boolean): DynamicChange | undefined {
  switch (id[0]) {
    case 'Vm': {
      const vm = step.vmAfter;
      if (removed || !vm?.config) return ['Vm_t', [id[1], undefined]];
      return ['Vm_t', [id[1], [vm.config, vmStateOf(vm)]]];
    }
    case 'Task': {
      const task = step.taskAfter;
      if (removed || !task) return ['Task_t', [id[1], undefined]];
      return ['Task_t', [id[1], taskViewOf(task)]];
    }
    default: {
      const tag = `${id[0]}_t` as 'Vbd_t';
      const kind = id[0].toLowerCase() as DeviceKind;
      const vm = step.vmAfter;
      const entry = vm?.devices?.[kind]?.get(id[1][1]);
      if (removed || !vm || !entry) return [tag, [id[1], undefined]];
      return [tag, [id[1], devicePair(kind, entry, vm)]] as DynamicChange;
    }
  }
}

/** Builds the records of one folded message. */
export function recordsOfMessage(seq: number, steps: readonly FoldStep[]): ChangeRecord[] {
  const touched = new Map<string, { id: DynamicId; step: FoldStep; removed: boolean }>();
  for (const step of steps) {
    const { body } = step.event;
    if (body.type === 'BarrierInjected' || body.type === 'BarrierRemoved') continue;
    const effects = dynamicIdsOf(step.event, step);
    for (const id of effects.signals) touched.set(dynamicIdKey(id), { id, step, removed: false });
    for (const id of effects.removes) touched.set(dynamicIdKey(id), { id, step, removed: true });
  }
  if (touched.size === 0) return [];
  const out: ChangeRecord[] = [];
  for (const { id, step, removed } of [...touched.values()].sort((a, b) => compareDynamicIds(a.id, b.id))) {
    const value = changeValue(id, step, removed);
    if (!value) continue;
    const { audit, body } = step.event;
    const kind = kindOf(id);
    const record: WireOut = new Map<string, WireOut>([
      ['seq', seq],
      ['kind', kind],
      ['id', DynamicIdT.encode(id, 'xenopsd')],
      ['change', DynamicT.encode(value, 'xenopsd')],
      ['event', body.type],
      ['dbg', audit.dbg],
      ['time', new Date(Number.isFinite(audit.timeMs) ? audit.timeMs : 0).toISOString()],
      ['host', audit.host],
      ['actor', audit.actor],
    ]);
    // The call's trace context (W3C), when its debug string carries one: follow one call across processes.
    const traceparent = traceparentOfDbg(audit.dbg);
    if (traceparent) record.set('traceparent', traceparent);
    out.push({ seq, kind, id, vmId: vmOfDynamicId(id), json: wireToJson(record), subject: changeSubject(id) });
  }
  return out;
}
