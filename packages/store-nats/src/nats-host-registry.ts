/**
 * The host registry and the cluster leases on NATS (API.md §9.7; docs/streams.md "Outside the
 * log"). Both are KV buckets of their own, not streams of the log: a registration is a heartbeat
 * that only its host's agent writes, and a lease is a compare-and-set record.
 *
 * - `<prefix>_hosts`: one key per host, overwritten at every refresh. NATS 2.9 has no per-key TTL,
 *   so the entry's server timestamp is its `last_seen` and readers call a host Down when it is older
 *   than their threshold (15 s by default); the bucket's own TTL (a day) only sweeps away hosts long
 *   gone.
 * - `<prefix>_leases`: one key per job. The bucket's TTL is the lease's length: a holder renews its
 *   entry (update at the revision it wrote) well within it, and an entry nobody renews is removed by
 *   the server, after which the next `create` takes it. No clock but the server's decides who holds.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { HostRegistration, HostRegistry, LeaseStore, RegisteredHost } from '@xenops/core';
import { isWrongLastSequence, kvKey, unavailable } from './nats-names.js';

/** How long the hosts bucket keeps a registration nobody refreshes. */
export const HOSTS_BUCKET_TTL_MS = 24 * 3600 * 1000;
/** How long a lease lasts without a renewal (the leases bucket's TTL). */
export const LEASE_TTL_MS = 10_000;

interface StoredRegistration {
  readonly id: string;
  readonly backend: string;
  readonly version: string;
  readonly started_ms: number;
  readonly addresses: readonly string[];
  readonly cpus: number;
  readonly memory_total: number;
}

export class NatsHostRegistry implements HostRegistry {
  constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    /** The bucket's name and its stream's. */
    private readonly bucket: string,
    private readonly stream: string,
  ) {}

  async register(reg: HostRegistration): Promise<void> {
    const stored: StoredRegistration = {
      id: reg.id,
      backend: reg.backend,
      version: reg.version,
      started_ms: reg.startedMs,
      addresses: reg.addresses,
      cpus: reg.cpus,
      memory_total: reg.memoryTotal,
    };
    try {
      await this.kv.put(kvKey(reg.id), JSON.stringify(stored));
    } catch (e) {
      throw unavailable(`cannot refresh the registration of host ${reg.id}`, e);
    }
  }

  async list(): Promise<RegisteredHost[]> {
    try {
      // The keys from the stream's per-subject state (STREAM.INFO): no consumer, so a gateway needs
      // no right to create one on the bucket.
      const info = await this.jsm.streams.info(this.stream, { subjects_filter: `$KV.${this.bucket}.>` });
      const subjectPrefix = `$KV.${this.bucket}.`;
      const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(subjectPrefix.length));
      const out: RegisteredHost[] = [];
      for (const key of keys) {
        const e = await this.kv.get(key);
        if (!e || e.operation !== 'PUT') continue;
        const r = parseRegistration(e.string());
        if (r) out.push({ ...r, lastSeenMs: e.created.getTime() });
      }
      return out;
    } catch (e) {
      throw unavailable('cannot read the host registry', e);
    }
  }
}

function parseRegistration(text: string): HostRegistration | undefined {
  try {
    const r = JSON.parse(text) as Partial<StoredRegistration>;
    if (typeof r.id !== 'string') return undefined;
    return {
      id: r.id,
      backend: typeof r.backend === 'string' ? r.backend : 'unknown',
      version: typeof r.version === 'string' ? r.version : 'unknown',
      startedMs: typeof r.started_ms === 'number' ? r.started_ms : 0,
      addresses: Array.isArray(r.addresses) ? r.addresses.filter((a): a is string => typeof a === 'string') : [],
      cpus: typeof r.cpus === 'number' ? r.cpus : 0,
      memoryTotal: typeof r.memory_total === 'number' ? r.memory_total : 0,
    };
  } catch {
    return undefined; // a damaged registration is ignored: its host refreshes it within seconds
  }
}

export class NatsLeases implements LeaseStore {
  constructor(
    private readonly kv: KV,
    readonly ttlMs: number,
  ) {}

  async acquire(name: string, holder: string): Promise<boolean> {
    const key = kvKey(name);
    const value = JSON.stringify({ holder });
    try {
      const current = await this.kv.get(key);
      if (current && current.operation === 'PUT') {
        if (holderOf(current.string()) !== holder) return false;
        await this.kv.update(key, value, current.revision);
        return true;
      }
      await this.kv.create(key, value);
      return true;
    } catch (e) {
      if (isWrongLastSequence(e)) return false; // another process wrote first: it holds the lease
      throw unavailable(`cannot take the lease ${name}`, e);
    }
  }

  async release(name: string, holder: string): Promise<void> {
    const key = kvKey(name);
    try {
      const current = await this.kv.get(key);
      if (current?.operation !== 'PUT' || holderOf(current.string()) !== holder) return;
      await this.kv.delete(key, { previousSeq: current.revision });
    } catch (e) {
      if (isWrongLastSequence(e)) return;
      throw unavailable(`cannot give up the lease ${name}`, e);
    }
  }

  async holder(name: string): Promise<string | undefined> {
    try {
      const current = await this.kv.get(kvKey(name));
      return current?.operation === 'PUT' ? holderOf(current.string()) : undefined;
    } catch (e) {
      throw unavailable(`cannot read the lease ${name}`, e);
    }
  }
}

function holderOf(text: string): string | undefined {
  try {
    const h = (JSON.parse(text) as { holder?: unknown }).holder;
    return typeof h === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}
