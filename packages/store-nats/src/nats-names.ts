/** Names of the NATS resources of one prefix, and the error helpers every NATS store shares. */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { PermissionViolationError } from '@nats-io/transport-node';
import { escapeSubjectToken, StorePermissionError, StoreUnavailableError } from '@xenops/core';
import { CURRENT_EVENT_SUBJECT_LAYOUT, eventSubjectOf, type EventSubjectLayout } from './event-subjects.js';

/** Names of every NATS resource derived from a prefix. */
export interface NatsNames {
  readonly prefix: string;
  readonly stream: string;
  readonly eventSubjects: string;
  readonly kvBucket: string;
  /** The stream behind the KV bucket. */
  readonly kvStream: string;
  /** The object store holding snapshots too big for one KV value. */
  readonly objectBucket: string;
  /** The stream behind the object store. */
  readonly objectStream: string;
  /** The KV bucket of host registrations (API.md §9.7) and its stream. */
  readonly hostsBucket: string;
  readonly hostsStream: string;
  /** The KV bucket of the cluster-wide jobs' leases and its stream. */
  readonly leasesBucket: string;
  readonly leasesStream: string;
  readonly queueGroup: string;
  /** The subject of a stream key in a stream of `layout` (default: the layout new streams get). */
  eventSubject(streamKey: string, layout?: EventSubjectLayout): string;
  commandSubject(address: string): string;
  /**
   * Reply subjects of one role's connection (`<inbox>.<nuid>...`): each role gets its own, so a
   * user may subscribe to its replies and no one else's.
   */
  inboxPrefix(role: string): string;
}

export function natsNames(prefix = 'xenops'): NatsNames {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new StoreUnavailableError(`invalid NATS prefix ${JSON.stringify(prefix)}: use tokens of [A-Za-z0-9_-] separated by dots`);
  }
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '_');
  return {
    prefix,
    stream: `${safe}_EVENTS`,
    eventSubjects: `${prefix}.ev.>`,
    kvBucket: `${safe}_snapshots`,
    kvStream: `KV_${safe}_snapshots`,
    objectBucket: `${safe}_snapshots`,
    objectStream: `OBJ_${safe}_snapshots`,
    hostsBucket: `${safe}_hosts`,
    hostsStream: `KV_${safe}_hosts`,
    leasesBucket: `${safe}_leases`,
    leasesStream: `KV_${safe}_leases`,
    queueGroup: 'xenops-agent',
    eventSubject: (k, layout = CURRENT_EVENT_SUBJECT_LAYOUT) => eventSubjectOf(prefix, k, layout),
    commandSubject: (a) => `${prefix}.cmd.${escapeSubjectToken(a)}`,
    inboxPrefix: (role) => `_INBOX_${safe}_${escapeSubjectToken(role)}`,
  };
}

/** KV keys allow `[-/=.\w]`, not `%`: the subject escaping with `=` as the escape character. */
export function kvKey(key: string): string {
  return escapeSubjectToken(key).replace(/%/g, '=');
}

export function unavailable(what: string, err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const denied = permissionViolationOf(err);
  if (denied) {
    const verb = denied.operation === 'subscription' ? 'subscribe to' : 'publish to';
    return new StorePermissionError(`${what}: these NATS credentials may not ${verb} ${denied.subject} (permissions violation)`, denied.operation, denied.subject, {
      cause: err,
    });
  }
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new StoreUnavailableError(`${what}: ${msg}`, { cause: err });
}

/** The server's permissions violation behind `err` (nats.js wraps it as a request's cause). */
export function permissionViolationOf(err: unknown): PermissionViolationError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return e;
  }
  return undefined;
}

export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
