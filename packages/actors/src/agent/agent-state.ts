import { promisify } from 'node:util';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { gunzip, gzip } from 'node:zlib';
import {
  emptyHost,
  emptyVm,
  evolveHost,
  foldBase,
  type FoldBase,
  foldVmMessage,
  internDevices,
  isLive,
  isRecordedOwner,
  deserializeSliced,
  readMessage,
  serializeSliced,
  Streams,
  type DamagedMessage,
  type EventLog,
  type FoldSnapshot,
  type HostState,
  type SnapshotStore,
  type VmAggregate,
} from '@xenops/core';

/**
 * What an agent knows of the log at one seq: the VMs this host owns (recorded owner, free or not,
 * quarantined ones included), its host's facts and the highest domid it used. An agent keeps it
 * in its own snapshot (`agent/<host-id>`), restarts from it plus the log after it, and never needs
 * another process's snapshot to do so.
 */
export interface AgentState {
  readonly seq: number;
  readonly vms: Map<string, VmAggregate>;
  host: HostState;
  lastDomid: number;
}

/** Bumped when the shape of the state changes: an older snapshot is then ignored (the log is read instead). */
const AGENT_SNAPSHOT_SCHEMA = 1;

export const agentSnapshotKey = (hostId: string) => `agent/${hostId}`;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

interface StoredAgentSnapshot {
  readonly schema: number;
  readonly hostId: string;
  readonly seq: number;
  readonly vms: readonly VmAggregate[];
  readonly host: HostState;
  readonly lastDomid: number;
}

export async function saveAgentSnapshot(store: SnapshotStore, hostId: string, s: AgentState): Promise<void> {
  const head: Omit<StoredAgentSnapshot, 'vms'> = { schema: AGENT_SNAPSHOT_SCHEMA, hostId, seq: s.seq, host: s.host, lastDomid: s.lastDomid };
  // A slice of VMs at a time: one clone of tens of thousands of VMs stopped the agent for most of a second.
  const data = await serializeSliced(head, [[...s.vms.values()]]);
  await store.put(agentSnapshotKey(hostId), { seq: s.seq, data: await gzipAsync(data, { level: 1 }) });
}

/** The agent's latest snapshot, or undefined (none, unreadable, another schema or another host's). */
export async function loadAgentSnapshot(store: SnapshotStore, hostId: string): Promise<AgentState | undefined> {
  const snap = await store.get(agentSnapshotKey(hostId));
  if (!snap) return undefined;
  try {
    const read = deserializeSliced(await gunzipAsync(snap.data));
    const v = ('whole' in read ? read.whole : { ...read.head, vms: read.lists[0] }) as Partial<StoredAgentSnapshot>;
    if (v.schema !== AGENT_SNAPSHOT_SCHEMA || v.hostId !== hostId || typeof v.seq !== 'number' || !Array.isArray(v.vms) || !v.host) return undefined;
    const vms = new Map<string, VmAggregate>();
    for (const vm of v.vms) {
      const devices = internDevices(vm.devices);
      vms.set(vm.id, devices === vm.devices ? vm : { ...vm, devices });
    }
    return { seq: v.seq, vms, host: v.host, lastDomid: v.lastDomid ?? 0 };
  } catch {
    return undefined;
  }
}

/** Messages a catch-up folds between two turns of the event loop (a tenth as many VM reads). */
const YIELD_EVERY = 500;

/** Where the fold of `catchUp` starts from. */
export interface FoldStart {
  readonly state: AgentState;
  /**
   * True when `state.vms` holds only this host's VMs (its own snapshot): a VM met in the log after
   * it and found to be this host's is read whole from its stream.
   */
  readonly partial: boolean;
}

export interface CatchUpReport {
  readonly messages: number;
  readonly damage: readonly DamagedMessage[];
}

/**
 * Folds the log after `start.state.seq` (up to `toSeq`) into it: this host's stream, every VM
 * stream, the domids this host used. A VM that became this host's meanwhile (its claim is in the
 * part read) but whose history starts before is read whole. At the end only this host's VMs stay.
 */
export async function catchUp(
  log: EventLog,
  snapshots: SnapshotStore,
  hostId: string,
  start: FoldStart,
  toSeq?: number,
): Promise<{ state: AgentState; report: CatchUpReport }> {
  const { state } = start;
  const vms = state.vms;
  const known = start.partial ? new Set(vms.keys()) : undefined;
  const joined = new Set<string>();
  const damage: DamagedMessage[] = [];
  let { host, lastDomid } = state;
  let seq = state.seq;
  let messages = 0;
  const hostStream = Streams.host(hostId);
  for await (const m of log.read(state.seq, toSeq)) {
    messages++;
    seq = m.seq;
    // The embedded log reads synchronously: without this the catch-up of a snapshot (5,000
    // messages and more) never let the event loop run, and every request waited for it.
    if (messages % YIELD_EVERY === 0) await nextTurn();
    if (m.stream === hostStream) {
      // A damaged setting or trigger is lost (reported); the host goes on with the others.
      const read = readMessage(m);
      if (read.damage) damage.push(read.damage);
      else for (const event of read.events) host = evolveHost(host, event);
      continue;
    }
    if (!m.stream.startsWith('vm/')) continue;
    const vmId = m.stream.slice(3);
    // One immutable update per message, as every other fold of the log.
    const folded = foldVmMessage(vms.get(vmId) ?? emptyVm(vmId), m);
    if (folded.damage) damage.push(folded.damage);
    for (const event of folded.events) {
      if (event.body.type === 'DomainCreated' && event.body.host === hostId && event.body.domid > lastDomid) lastDomid = event.body.domid;
    }
    vms.set(vmId, folded.vm);
    if (known && !known.has(vmId)) joined.add(vmId);
  }
  // Claimed since the snapshot: the part read lacks the start of its history. Where every such
  // read starts is the same for all of them (asked once: after 10,000 VM.adds it was 10,000 times).
  let base: FoldBase | undefined;
  let read = 0;
  for (const vmId of joined) {
    if (!isRecordedOwner(vms.get(vmId)!, hostId)) continue;
    // One query per VM: after 10,000 VM.adds that was 2.5 s without a turn of the event loop (embedded).
    if (++read % (YIELD_EVERY / 10) === 0) await nextTurn();
    base ??= await foldBase(log, snapshots);
    const whole = await readVm(log, snapshots, vmId, seq, base);
    if (whole.damage) damage.push(whole.damage);
    vms.set(vmId, whole.vm);
  }
  for (const [vmId, vm] of vms) if (!keeps(vm, hostId)) vms.delete(vmId);
  return { state: { seq, vms, host, lastDomid }, report: { messages, damage } };
}

/** A VM an agent's state keeps: this host's, live or quarantined. */
function keeps(vm: VmAggregate, hostId: string): boolean {
  return isLive(vm) && (isRecordedOwner(vm, hostId) || (vm.quarantine !== undefined && vm.owner === undefined));
}

/**
 * One VM's stream folded from the start of the retained log (or the fold snapshot that covers
 * what retention deleted) up to `toSeq`.
 */
export async function readVm(
  log: EventLog,
  snapshots: SnapshotStore,
  vmId: string,
  toSeq?: number,
  /** Where the read starts, when the caller already knows (`foldBase`). */
  known?: FoldBase,
): Promise<{ vm: VmAggregate; damage?: DamagedMessage }> {
  const base = known ?? (await foldBase(log, snapshots));
  let vm = base.vms.get(vmId) ?? emptyVm(vmId);
  let damage: DamagedMessage | undefined;
  for await (const m of log.readStream(Streams.vm(vmId), base.seq)) {
    if (toSeq !== undefined && m.seq > toSeq) break;
    const folded = foldVmMessage(vm, m);
    damage ??= folded.damage;
    vm = folded.vm;
  }
  return damage ? { vm, damage } : { vm };
}

/** The start of a fold without an agent snapshot: a fold snapshot (any host's VMs) or the empty state. */
export function fullStart(snapshot: FoldSnapshot | undefined, hostId: string): FoldStart {
  const vms = new Map<string, VmAggregate>();
  let host = emptyHost();
  let lastDomid = 0;
  if (snapshot) {
    for (const vm of snapshot.vms) vms.set(vm.id, vm);
    for (const [h, domid] of snapshot.domids) if (h === hostId) lastDomid = domid;
    for (const [h, state] of snapshot.hosts) if (h === hostId) host = state;
  }
  return { state: { seq: snapshot?.seq ?? 0, vms, host, lastDomid }, partial: false };
}
