/** Names of the NATS resources of one prefix, and the error helpers every NATS store shares. */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { StoreUnavailableError } from '../event-log.js';
import { escapeSubjectToken } from '../subject-token.js';

/** Names of every NATS resource derived from a prefix. */
export interface NatsNames {
  readonly prefix: string;
  readonly stream: string;
  readonly eventSubjects: string;
  readonly kvBucket: string;
  /** The object store holding snapshots too big for one KV value (its stream is `OBJ_<bucket>`). */
  readonly objectBucket: string;
  readonly queueGroup: string;
  eventSubject(streamKey: string): string;
  commandSubject(address: string): string;
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
    objectBucket: `${safe}_snapshots`,
    queueGroup: 'xenops-agent',
    eventSubject: (k) => `${prefix}.ev.${escapeSubjectToken(k)}`,
    commandSubject: (a) => `${prefix}.cmd.${escapeSubjectToken(a)}`,
  };
}

/** KV keys allow `[-/=.\w]`, not `%`: the subject escaping with `=` as the escape character. */
export function kvKey(key: string): string {
  return escapeSubjectToken(key).replace(/%/g, '=');
}

export function unavailable(what: string, err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new StoreUnavailableError(`${what}: ${msg}`, { cause: err });
}

export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
