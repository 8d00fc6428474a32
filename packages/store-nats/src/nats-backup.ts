/**
 * Backup of the NATS store through the JetStream API's stream snapshots (restore: nats-restore.ts). nats.js 3.x
 * offers no snapshot/restore, so the documented API subjects are driven with the core client:
 *
 * - `$JS.API.STREAM.SNAPSHOT.<stream>` with a deliver subject: the server answers with the
 *   stream's configuration and state, then sends the snapshot (an s2-compressed tar of the stream's
 *   store) in chunks to that subject, each with a reply subject to acknowledge it (its flow
 *   control), and ends with an empty message (status 408 in its headers if it gave up);
 * - `$JS.API.STREAM.RESTORE.<stream>` with the configuration and state: the server answers with a
 *   subject to send the chunks to, each as a request it acknowledges; an empty request ends the
 *   restore and is answered with the new stream's info.
 *
 * The stream is copied as it is, configuration included: its name, subjects and whatever layout
 * marker its description carries come back unchanged, so the copy does not depend on how events
 * are laid out on subjects. The same goes for the prefix: JetStream restores a stream only under
 * its own name, so a backup is restored as the prefix it was taken from, on a server (or after a
 * clean-up) where that prefix is free.
 *
 * Besides the stream, a backup carries the requested snapshot entries (the fold snapshot), read
 * through the SnapshotStore port before the stream snapshot begins: each was written at a seq the
 * log already held, so the stream copy covers it, and a copy of a log shortened by retention comes
 * with the snapshot that covers the cut. The KV bucket and object store are not copied as streams:
 * three snapshots taken one after the other could disagree with each other and with the log.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupWriter,
  StoreUnavailableError,
  type BackupHeader,
  type BackupOptions,
  type BackupSnapshotEntry,
  type SnapshotStore,
  type StoreBackup,
} from '@xenops/core';
import { unavailable, type NatsNames } from './nats-names.js';

const SNAPSHOT_CHUNK_BYTES = 128 * 1024;
/** How long a snapshot may pause between two chunks before the backup gives up. */
const CHUNK_IDLE_MS = 30_000;
export const API_TIMEOUT_MS = 10_000;
const ATTEMPTS = 3;

interface ApiError {
  readonly code: number;
  readonly err_code?: number;
  readonly description: string;
}

interface SnapshotReply {
  readonly config?: Record<string, unknown>;
  readonly state?: { first_seq: number; last_seq: number } & Record<string, unknown>;
  readonly error?: ApiError;
}

const text = new TextDecoder();

export function apiReply<T>(m: Msg, what: string): T & { error?: ApiError } {
  try {
    return JSON.parse(text.decode(m.data)) as T & { error?: ApiError };
  } catch {
    throw new StoreUnavailableError(`${what}: the NATS server's reply is not JSON`);
  }
}

export function describeApiError(e: ApiError): string {
  return `${e.description} (${e.code}${e.err_code ? `/${e.err_code}` : ''})`;
}

/** The next message of a subscription, or an error after `ms` without one. */
async function nextWithin(it: AsyncIterator<Msg>, ms: number, what: string): Promise<IteratorResult<Msg>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StoreUnavailableError(`${what}: no data from the NATS server for ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a stream snapshot delivered to a fresh inbox. */
async function startSnapshot(nc: NatsConnection, stream: string, inboxPrefix: string | undefined): Promise<{ sub: Subscription; reply: Required<Pick<SnapshotReply, 'config' | 'state'>> }> {
  // The role's own inbox (`_INBOX_<prefix>_<role>`): the only one its NATS permissions let it read.
  const inbox = createInbox(inboxPrefix);
  const sub = nc.subscribe(inbox);
  try {
    const request = { deliver_subject: inbox, no_consumers: true, chunk_size: SNAPSHOT_CHUNK_BYTES };
    const m = await nc.request(`$JS.API.STREAM.SNAPSHOT.${stream}`, JSON.stringify(request), { timeout: API_TIMEOUT_MS });
    const reply = apiReply<SnapshotReply>(m, 'backup failed');
    if (reply.error) throw new StoreUnavailableError(`backup failed: the NATS server refused to snapshot ${stream}: ${describeApiError(reply.error)}`);
    if (!reply.config || !reply.state) throw new StoreUnavailableError(`backup failed: the snapshot reply for ${stream} lacks the stream's configuration or state`);
    return { sub, reply: { config: reply.config, state: reply.state } };
  } catch (err) {
    sub.unsubscribe();
    throw unavailable('backup failed', err);
  }
}

/** Reads a snapshot to its end, acknowledging each chunk, and drops it (the server allows one at a time). */
async function discardSnapshot(sub: Subscription, stream: string): Promise<void> {
  const chunks = sub[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await nextWithin(chunks, CHUNK_IDLE_MS, `backup of ${stream} failed`);
      if (next.done || next.value.data.length === 0) return;
      if (next.value.reply) next.value.respond();
    }
  } finally {
    sub.unsubscribe();
  }
}

/** The seqs a stream holds: first (head + 1 when empty) and last. */
function seqsOf(state: { first_seq: number; last_seq: number }): { first: number; last: number } {
  return { first: state.first_seq > 0 ? state.first_seq : state.last_seq + 1, last: state.last_seq };
}

/** Whether a copy starting at `first` can be folded: from seq 1, or from a snapshot at or after the cut. */
function covered(first: number, entries: readonly BackupSnapshotEntry[]): boolean {
  return first <= 1 || entries.some((e) => e.seq >= first - 1);
}

/** A consistent copy of the event stream (and the requested snapshot entries) as a backup file. */
export async function backupNats(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: NatsNames,
  snapshots: SnapshotStore,
  opts: BackupOptions,
  inboxPrefix?: string,
): Promise<StoreBackup> {
  for (let attempt = 1; ; attempt++) {
    const entries: BackupSnapshotEntry[] = [];
    for (const key of opts.snapshotKeys ?? []) {
      const s = await snapshots.get(key);
      if (s) entries.push({ key, seq: s.seq, data: s.data });
    }
    const retry = attempt < ATTEMPTS;
    const uncovered = (first: number) =>
      new StoreUnavailableError(
        `backup failed: the log of ${names.stream} starts at seq ${first} (retention) and no snapshot covers the seqs before it; try again`,
      );
    // A log shortened by retention is only usable with a snapshot at or after the cut: checked
    // before a snapshot is started, and again against the state the snapshot reports.
    let info;
    try {
      info = seqsOf((await jsm.streams.info(names.stream)).state);
    } catch (err) {
      throw unavailable('backup failed', err);
    }
    if (!covered(info.first, entries)) {
      if (retry) continue;
      throw uncovered(info.first);
    }
    const { sub, reply } = await startSnapshot(nc, names.stream, inboxPrefix);
    const { first, last } = seqsOf(reply.state);
    if (!covered(first, entries)) {
      await discardSnapshot(sub, names.stream);
      if (retry) continue;
      throw uncovered(first);
    }
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      mode: 'nats',
      prefix: names.prefix,
      head_seq: last,
      first_seq: first,
      created: new Date().toISOString(),
      writer: opts.writer,
      nats: { stream: names.stream, config: reply.config, state: reply.state },
    };
    async function* bytes(): AsyncGenerator<Uint8Array> {
      const chunks = sub[Symbol.asyncIterator]();
      try {
        const w = new BackupWriter();
        yield w.header(header);
        for (const e of entries) yield w.snapshot(e);
        for (;;) {
          const next = await nextWithin(chunks, CHUNK_IDLE_MS, `backup of ${names.stream} failed`);
          if (next.done) throw new StoreUnavailableError(`backup of ${names.stream} failed: the snapshot ended before its last chunk`);
          const m = next.value;
          if (m.data.length === 0) {
            const code = m.headers?.code ?? 0;
            if (code >= 400) {
              throw new StoreUnavailableError(`backup of ${names.stream} failed: the NATS server stopped the snapshot: ${code} ${m.headers?.description ?? ''}`.trim());
            }
            break;
          }
          yield w.data(m.data);
          // Acknowledged once passed on: the server's flow control then follows the consumer.
          if (m.reply) m.respond();
        }
        yield w.end();
      } finally {
        sub.unsubscribe();
      }
    }
    return { header, bytes: bytes() };
  }
}
