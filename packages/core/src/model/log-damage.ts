import { Errors, type XenopsError } from '../errors.js';
import { decodeBatch } from '../events/codec.js';
import type { LogEvent } from '../events/event.js';
import type { EventLog, StoredMessage } from '../store/event-log.js';
import { emptyVm, evolveVmAll, type VmAggregate } from './vm-aggregate.js';

/**
 * A message of the log that no fold can read (bytes damaged from outside, or written by a bug),
 * attributed by its stream key: `vm/<id>`, `task/<id>`, `host/<id>` or a gateway stream.
 */
export interface DamagedMessage {
  readonly seq: number;
  readonly stream: string;
  /** The VM whose stream it belongs to (`vm/<id>`): that VM is quarantined from this seq on. */
  readonly vm?: string;
  /** The task of a `task/<id>` stream (for `task/unrouted`, the task that message created: its seq). */
  readonly task?: string;
  /** The host of a `host/<id>` stream. */
  readonly host?: string;
  /** Why it cannot be read. */
  readonly error: string;
}

/**
 * What a VM keeps of the first damaged message of its stream. A fold cannot know what that
 * message and the ones after it did, so the VM stays as folded before it: later messages of its
 * stream change nothing, and every command for it is refused (`quarantineError`).
 */
export interface VmQuarantine {
  readonly seq: number;
  readonly error: string;
}

const VM_PREFIX = 'vm/';
const TASK_PREFIX = 'task/';
const HOST_PREFIX = 'host/';

/** Attributes an unreadable message to what its stream key names. */
export function damagedMessage(stream: string, seq: number, cause: unknown): DamagedMessage {
  // Decode errors repeat the seq in front of their message; the report carries it once.
  const error = (cause instanceof Error ? cause.message : String(cause)).replace(/^seq \d+: /, '');
  if (stream.startsWith(VM_PREFIX)) return { seq, stream, vm: stream.slice(VM_PREFIX.length), error };
  if (stream.startsWith(TASK_PREFIX)) {
    const id = stream.slice(TASK_PREFIX.length);
    return { seq, stream, task: id === 'unrouted' ? String(seq) : id, error };
  }
  if (stream.startsWith(HOST_PREFIX)) return { seq, stream, host: stream.slice(HOST_PREFIX.length), error };
  return { seq, stream, error };
}

/** A stored message as a fold takes it: its events, or why it has none. */
export type ReadMessage = { readonly events: LogEvent[]; readonly damage?: undefined } | { readonly events?: undefined; readonly damage: DamagedMessage };

/** Decodes a stored message for a fold; an undecodable one is reported, never thrown. */
export function readMessage(m: StoredMessage): ReadMessage {
  try {
    return { events: decodeBatch(m.seq, m.data) };
  } catch (e) {
    return { damage: damagedMessage(m.stream, m.seq, e) };
  }
}

/** The part of a fold's state that damage touches. `damage`, when given, lists every damaged message met. */
export interface DamageState {
  readonly vms: Map<string, VmAggregate>;
  readonly damage?: DamagedMessage[];
}

/**
 * Records a damaged message in a fold: listed, and its VM (if any) quarantined at its first
 * damage. The quarantined VM is kept even when it has nothing else (e.g. its VmAdded is the
 * damaged message), so that its id stays refused rather than looking free.
 */
export function noteDamage(state: DamageState, d: DamagedMessage): void {
  if (state.damage && !state.damage.some((known) => known.seq === d.seq)) {
    state.damage.push(d);
    // Found out of order (the integrity scan of a snapshot's range): keep the report in seq order.
    if (state.damage.length > 1 && state.damage.at(-2)!.seq > d.seq) state.damage.sort((a, b) => a.seq - b.seq);
  }
  if (d.vm === undefined) return;
  const vm = state.vms.get(d.vm) ?? emptyVm(d.vm);
  if (vm.quarantine === undefined || vm.quarantine.seq > d.seq) state.vms.set(d.vm, quarantined(vm, d));
}

/** The VMs a damage report quarantines, each with its first damaged seq, in seq order. */
export function quarantinesOf(damage: readonly DamagedMessage[]): ReadonlyMap<string, number> {
  const out = new Map<string, number>();
  for (const d of damage) if (d.vm !== undefined && !out.has(d.vm)) out.set(d.vm, d.seq);
  return out;
}

/** The VM quarantined at damaged message `d`. */
export function quarantined(vm: VmAggregate, d: DamagedMessage): VmAggregate {
  return { ...vm, quarantine: { seq: d.seq, error: d.error } };
}

/**
 * Folds one message of a VM's own stream into it, as `foldMessage` does for the whole log: a
 * message that cannot be read or folded quarantines the VM, and a quarantined VM stays as it is.
 * The decoded events come back too (a quarantined VM's are still facts, e.g. domids it used).
 */
export function foldVmMessage(vm: VmAggregate, m: StoredMessage): { readonly vm: VmAggregate; readonly events: readonly LogEvent[]; readonly damage?: DamagedMessage } {
  const read = readMessage(m);
  if (read.damage) return { vm: vm.quarantine ? vm : quarantined(vm, read.damage), events: [], damage: read.damage };
  try {
    return { vm: evolveVmAll(vm, read.events), events: read.events };
  } catch (e) {
    const damage = damagedMessage(m.stream, m.seq, e);
    return { vm: vm.quarantine ? vm : quarantined(vm, damage), events: [], damage };
  }
}

/** The refusal of every command for a quarantined VM. */
export function quarantineError(vmId: string, q: VmQuarantine): XenopsError {
  return Errors.internal(`VM ${vmId} cannot be used: its log is damaged at seq ${q.seq} (${q.error}); see xenops verify`);
}

/** Messages `findDamage` decodes between two pauses. */
const SCAN_CHUNK = 64;
/** How long `findDamage` pauses per unit of time it worked: it takes a fifth of the thread at most. */
const SCAN_IDLE_PER_WORK = 4;

/**
 * Every damaged message with `afterSeq < seq <= toSeq`, decoding each message and folding none:
 * for the part of the log a fold snapshot covers, which a start from that snapshot never reads.
 * The first messages are decoded at once (a small log is checked before its service answers
 * anything); then it pauses, on a timer, four times as long as it worked, so that beside a live
 * service it takes a fifth of the thread at most and requests always go first.
 */
export async function* findDamage(log: EventLog, afterSeq: number, toSeq: number): AsyncGenerator<DamagedMessage> {
  let read = 0;
  let chunkStarted = performance.now();
  for await (const m of log.read(afterSeq, toSeq)) {
    const r = readMessage(m);
    if (r.damage) yield r.damage;
    if (++read % SCAN_CHUNK === 0) {
      const worked = performance.now() - chunkStarted;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, worked * SCAN_IDLE_PER_WORK)));
      chunkStarted = performance.now();
    }
  }
}
