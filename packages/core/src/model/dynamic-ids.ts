/**
 * Which `Dynamic.id`s (API.md §4.10) one log event signals and which it removes (§7.7).
 *
 * Pure. The UPDATES set and the change stream (§9.4) both derive from this one function, so the
 * two can never disagree. Devices: `deviceIdsOf` (the devices an aggregate holds, read from
 * `vm.devices.<kind>` tables when present) and `deviceEffects` (a per-device diff of those
 * tables) are the one place that knows about them.
 */
import type { LogEvent } from '../events/event.js';
import type { DynamicId } from '../idl/index.js';
import type { TaskRecord } from './task-record.js';
import { taskIdOf } from './task-record.js';
import type { VmAggregate } from './vm-aggregate.js';

export type DynamicKind = DynamicId[0];

const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Order of kinds among ids sharing one seq (§7.7). */
export const DYNAMIC_KIND_ORDER: readonly DynamicKind[] = ['Vm', 'Vbd', 'Vif', 'Pci', 'Vgpu', 'Vusb', 'Task'];
const KIND_RANK = new Map<string, number>(DYNAMIC_KIND_ORDER.map((k, i) => [k, i]));

/** What the fold knew around one event: the states of the VM and the task it is about. */
export interface DynamicIdContext {
  /**
   * The VM aggregate before and after the event: for events of the VM's own stream; for events of
   * other streams that name a VM (e.g. `VmRefreshed`), the current aggregate as both.
   */
  readonly vmBefore?: VmAggregate;
  readonly vmAfter?: VmAggregate;
  /** The record of the task the event is about (`taskIdOf`), before and after `evolveTask`. */
  readonly taskBefore?: TaskRecord;
  readonly taskAfter?: TaskRecord;
}

export interface DynamicIdEffects {
  /** Ids whose `stat` changed (or that a refresh asks clients to re-read), in §7.7 order. */
  readonly signals: DynamicId[];
  /** Ids that ceased to exist (VM removal with its devices, task destruction). */
  readonly removes: DynamicId[];
}

/** Whether a VM aggregate is a registered VM (has a configuration). */
const registered = (vm: VmAggregate | undefined): vm is VmAggregate & { config: NonNullable<VmAggregate['config']> } =>
  vm?.config !== undefined;

/** Device tables of an aggregate by kind (`vm.devices.vbd` ...): Maps from device name to entry. */
type DeviceTables = Readonly<Partial<Record<string, ReadonlyMap<string, unknown>>>>;

/** Device kinds in §7.7 order: the aggregate's table key and the Dynamic.id tag. */
const DEVICE_TAGS = [
  ['vbd', 'Vbd'],
  ['vif', 'Vif'],
  ['pci', 'Pci'],
  ['vgpu', 'Vgpu'],
  ['vusb', 'Vusb'],
] as const;

const tablesOf = (vm: VmAggregate | undefined): DeviceTables | undefined =>
  (vm as unknown as { devices?: DeviceTables } | undefined)?.devices;

const sortedNames = (t: ReadonlyMap<string, unknown> | undefined): string[] => (t ? [...t.keys()].sort(cmpStr) : []);

/** The device ids of a VM aggregate (VBD, VIF, PCI, VGPU, VUSB), in §7.7 order. */
export function deviceIdsOf(vm: VmAggregate | undefined): DynamicId[] {
  const tables = tablesOf(vm);
  if (!vm || !tables) return [];
  const out: DynamicId[] = [];
  for (const [key, tag] of DEVICE_TAGS) for (const name of sortedNames(tables[key])) out.push([tag, [vm.id, name]]);
  return out;
}

/**
 * Adds the device signals/removals of one VM event: a per-device diff of the aggregate's device tables
 * (the fold is immutable, so an untouched device keeps its entry object).
 */
function deviceEffects(before: VmAggregate | undefined, after: VmAggregate, signals: DynamicId[], removes: DynamicId[]): void {
  const tb = tablesOf(before);
  const ta = tablesOf(after);
  if (!ta || tb === ta) return;
  for (const [key, tag] of DEVICE_TAGS) {
    const b = tb?.[key];
    const a = ta[key];
    if (a === b) continue;
    for (const name of sortedNames(a)) if (b?.get(name) !== a!.get(name)) signals.push([tag, [after.id, name]]);
    for (const name of sortedNames(b)) if (!a?.has(name)) removes.push([tag, [after.id, name]]);
  }
}

/**
 * The VM aggregate's fields as `VM.stat` sees them: visible ones are compared, the others (queue
 * bookkeeping, who writes it; devices are objects of their own) are not. Every field is in exactly
 * one list (checked by the compiler below), so a field added to the aggregate must be classified.
 */
export const VISIBLE_VM_FIELDS = ['id', 'config', 'domain', 'suspendImage', 'quarantine'] as const satisfies readonly (keyof VmAggregate)[];
type InvisibleVmField = 'queue' | 'running' | 'version' | 'owner' | 'devices';
type UnclassifiedVmField = Exclude<keyof VmAggregate, (typeof VISIBLE_VM_FIELDS)[number] | InvisibleVmField>;
const everyVmFieldClassified: [UnclassifiedVmField] extends [never] ? true : UnclassifiedVmField = true;
void everyVmFieldClassified;

/** Whether anything `VM.stat` can show differs between two aggregates (by reference: the fold is immutable). */
export function vmVisiblyChanged(before: VmAggregate | undefined, after: VmAggregate): boolean {
  if (!before) return true;
  // Each field by name, not a loop over VISIBLE_VM_FIELDS: this runs for every VM event of a fold,
  // where named loads measured cheaper than loads by a variable key (docs/benchmarks.md, item 5,
  // fourth pass). A test checks that these are the fields of that list.
  return (
    before.config !== after.config ||
    before.domain !== after.domain ||
    before.suspendImage !== after.suspendImage ||
    before.quarantine !== after.quarantine ||
    before.id !== after.id
  );
}

/** §7.7 "Signalling events" and "Removal" for one event. */
export function dynamicIdsOf(event: LogEvent, ctx: DynamicIdContext): DynamicIdEffects {
  const signals: DynamicId[] = [];
  const removes: DynamicId[] = [];
  const { body } = event;
  const { vmBefore, vmAfter } = ctx;

  if (body.type === 'VmRefreshed') {
    // §7.7: signals the VM and all its devices (nothing, if the VM is not registered).
    if (registered(vmAfter)) signals.push(['Vm', vmAfter.id], ...deviceIdsOf(vmAfter));
  } else if (body.type === 'BarrierInjected' || body.type === 'BarrierRemoved') {
    // barriers are not objects
  } else if (vmAfter !== undefined && vmBefore !== vmAfter) {
    // An event of the VM's stream.
    if (registered(vmAfter)) {
      if (body.type === 'VmAdded' || vmVisiblyChanged(vmBefore, vmAfter)) signals.push(['Vm', vmAfter.id]);
      deviceEffects(vmBefore, vmAfter, signals, removes);
    } else if (registered(vmBefore)) {
      // The VM was removed: it and every device it had vanish.
      removes.push(['Vm', vmBefore.id], ...deviceIdsOf(vmBefore));
    }
  }

  const taskId = taskIdOf(event);
  if (taskId !== undefined && ctx.taskBefore !== ctx.taskAfter) {
    if (ctx.taskAfter) signals.push(['Task', taskId]);
    else if (ctx.taskBefore) removes.push(['Task', taskId]);
  }
  return { signals, removes };
}

/** A stable string key of a Dynamic.id (for maps). */
export function dynamicIdKey(id: DynamicId): string {
  const [kind, arg] = id;
  return typeof arg === 'string' ? `${kind}\u0000${arg}` : `${kind}\u0000${arg[0]}\u0000${arg[1]}`;
}

/** The VM an id belongs to (the VM itself or a device's VM); undefined for tasks. */
export function vmOfDynamicId(id: DynamicId): string | undefined {
  if (id[0] === 'Task') return undefined;
  if (id[0] === 'Vm') return id[1];
  return id[1][0];
}

/** §7.7 order among ids of one seq: Vm, Vbd, Vif, Pci, Vgpu, Vusb, Task, then by id (tasks numerically). */
export function compareDynamicIds(a: DynamicId, b: DynamicId): number {
  const ka = KIND_RANK.get(a[0])!;
  const kb = KIND_RANK.get(b[0])!;
  if (ka !== kb) return ka - kb;
  if (a[0] === 'Task' && b[0] === 'Task') {
    const d = Number(a[1]) - Number(b[1]);
    return d !== 0 && !Number.isNaN(d) ? d : cmpStr(a[1], b[1]);
  }
  const [, x] = a;
  const [, y] = b;
  if (typeof x === 'string' && typeof y === 'string') return cmpStr(x, y);
  if (typeof x !== 'string' && typeof y !== 'string') return cmpStr(x[0], y[0]) || cmpStr(x[1], y[1]);
  return 0;
}
