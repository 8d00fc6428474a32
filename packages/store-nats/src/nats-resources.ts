/**
 * The JetStream resources of one prefix: the event stream, the KV bucket and the object store of
 * snapshots. They are created when missing, by whoever opens them first with the right to; a
 * deployment with per-role permissions creates them once with `xenopsd --nats-setup` (an admin's
 * credentials) and gives the roles no right to create anything.
 */
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, setSha256Backend, type ObjectStore } from '@nats-io/obj';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { stderrStoreLogger, StorePermissionError } from '@xenops/core';
import type { NatsStoreOptions } from './nats-store-options.js';
import { CURRENT_EVENT_SUBJECT_LAYOUT, eventStreamDescription, layoutOfStream, type EventSubjectLayout } from './event-subjects.js';
import { connectNats } from './nats-connection.js';
import { natsNames, unavailable, type NatsNames } from './nats-names.js';
import { HOSTS_BUCKET_TTL_MS, LEASE_TTL_MS } from './nats-host-registry.js';

const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

export interface NatsResources {
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  /** The subject layout of the event stream (fixed when it was created). */
  readonly layout: EventSubjectLayout;
  readonly kv: KV;
  readonly os: ObjectStore;
  /** The host registry's bucket and the leases' bucket (nats-host-registry.ts). */
  readonly hosts: KV;
  readonly leases: KV;
  /** What had to be created now (empty when everything existed). */
  readonly created: readonly string[];
}

/** The event stream's info, the stream created (in the current subject layout) when missing. */
async function ensureStream(jsm: JetStreamManager, names: NatsNames, replicas: number): Promise<{ info: StreamInfo; created: boolean }> {
  try {
    return { info: await jsm.streams.info(names.stream), created: false }; // exists: left alone
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
  }
  try {
    const info = await jsm.streams.add({
      name: names.stream,
      description: eventStreamDescription(names.prefix, CURRENT_EVENT_SUBJECT_LAYOUT),
      subjects: [names.eventSubjects],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      num_replicas: replicas,
    });
    return { info, created: true };
  } catch (err) {
    // Another process may have created it between our info and add.
    const info = await jsm.streams.info(names.stream).catch(() => {
      throw err;
    });
    return { info, created: false };
  }
}

async function exists(jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    await jsm.streams.info(stream);
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
    throw err;
  }
}

/**
 * Opens (creating when missing) the resources of `names` on `nc`. A user without the right to
 * create a missing one gets a StorePermissionError saying so and how to create them.
 */
export async function openNatsResources(
  nc: NatsConnection,
  names: NatsNames,
  opts: Pick<NatsStoreOptions, 'servers' | 'log' | 'replicas'>,
): Promise<NatsResources> {
  const created: string[] = [];
  const replicas = opts.replicas ?? 1;
  const log = opts.log ?? stderrStoreLogger;
  let step = 'the JetStream API';
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    step = `the stream ${names.stream}`;
    const stream = await ensureStream(jsm, names, replicas);
    if (stream.created) created.push(step);
    else if (stream.info.config.num_replicas !== replicas && opts.replicas !== undefined) {
      log(`the stream ${names.stream} exists with ${stream.info.config.num_replicas} replica(s), not the ${replicas} asked for: it is kept as it is`);
    }
    const layout = layoutOfStream(names.stream, stream.info.config.description);
    if (layout !== CURRENT_EVENT_SUBJECT_LAYOUT) {
      log(
        `the stream ${names.stream} uses event subject layout ${layout} (${names.prefix}.ev.<key>, one token per stream key): ` +
          `it is kept, but NATS permissions cannot tell its VM streams from the others`,
      );
    }
    step = `the KV bucket ${names.kvBucket}`;
    const kvExisted = await exists(jsm, names.kvStream);
    const kv = await new Kvm(js).create(names.kvBucket, { history: 1, storage: StorageType.File, replicas });
    if (!kvExisted) created.push(step);
    // Node's SHA-256 for the object digests (the default pure-JS one is ~4x slower on big objects).
    setSha256Backend('native');
    step = `the object store ${names.objectBucket}`;
    const osExisted = await exists(jsm, names.objectStream);
    const os = await new Objm(js).create(names.objectBucket, { storage: StorageType.File, replicas });
    if (!osExisted) created.push(step);
    step = `the KV bucket ${names.hostsBucket}`;
    const hostsExisted = await exists(jsm, names.hostsStream);
    const hosts = await new Kvm(js).create(names.hostsBucket, { history: 1, storage: StorageType.File, ttl: HOSTS_BUCKET_TTL_MS, replicas });
    if (!hostsExisted) created.push(step);
    step = `the KV bucket ${names.leasesBucket}`;
    const leasesExisted = await exists(jsm, names.leasesStream);
    const leases = await new Kvm(js).create(names.leasesBucket, { history: 1, storage: StorageType.File, ttl: LEASE_TTL_MS, replicas });
    if (!leasesExisted) created.push(step);
    return { jsm, js, layout, kv, os, hosts, leases, created };
  } catch (err) {
    const e = unavailable(`cannot open ${step} (prefix ${names.prefix}) at ${opts.servers}`, err);
    if (e instanceof StorePermissionError && /\.(CREATE|UPDATE)\./.test(e.subject)) {
      throw new StorePermissionError(
        `${e.message}: it does not exist and these credentials may not create it; create the prefix's resources first with ` +
          `'xenopsd --nats-setup --nats ${opts.servers} --nats-prefix ${names.prefix}' and credentials allowed to`,
        e.operation,
        e.subject,
        { cause: err },
      );
    }
    throw e;
  }
}

/**
 * `xenopsd --nats-setup`: connects, creates whatever of the prefix's resources is missing and
 * disconnects. Returns one line per resource saying whether it was created or found.
 */
export async function setupNatsResources(opts: NatsStoreOptions): Promise<string[]> {
  const names = natsNames(opts.prefix);
  const nc = await connectNats(opts.servers, opts, { name: opts.name ?? 'xenopsd setup', maxReconnectAttempts: 0 });
  try {
    const r = await openNatsResources(nc, names, opts);
    const state = (what: string) => `${r.created.includes(what) ? 'created' : 'found'} ${what}`;
    return [
      `${state(`the stream ${names.stream}`)} (subjects ${names.eventSubjects}, event subject layout ${r.layout}, ${(await r.jsm.streams.info(names.stream)).config.num_replicas} replica(s))`,
      `${state(`the KV bucket ${names.kvBucket}`)} (stream ${names.kvStream})`,
      `${state(`the object store ${names.objectBucket}`)} (stream ${names.objectStream})`,
      `${state(`the KV bucket ${names.hostsBucket}`)} (stream ${names.hostsStream}, host registrations)`,
      `${state(`the KV bucket ${names.leasesBucket}`)} (stream ${names.leasesStream}, leases of ${LEASE_TTL_MS / 1000} s)`,
    ];
  } finally {
    await nc.close().catch(() => {});
  }
}
