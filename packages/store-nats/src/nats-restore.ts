/**
 * Restore of a NATS backup (nats-backup.ts describes the JetStream API it drives): the stream is
 * recreated from its snapshot under its own name and configuration, then the backup's snapshot
 * entries are written through the store's SnapshotStore port.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { RestoreError, type BackupFile, type RestoreSummary } from '@xenops/core';
import type { NatsStoreOptions } from './nats-store-options.js';
import { API_TIMEOUT_MS, apiReply, describeApiError } from './nats-backup.js';
import { natsNames, unavailable } from './nats-names.js';
import { openNatsStores } from './nats-stores.js';
import { connectNats } from './nats-connection.js';

/** The server checks the restored stream before answering the final request. */
const RESTORE_FINISH_TIMEOUT_MS = 120_000;
const text = new TextDecoder();

async function streamExists(jsm: JetStreamManager, stream: string): Promise<{ messages: number } | undefined> {
  try {
    const si = await jsm.streams.info(stream);
    return { messages: si.state.messages };
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}

/**
 * Restores a NATS backup as a new stream on `opts.servers`: the prefix must be the backup's, its
 * stream must not exist, and its snapshot bucket must hold nothing (a stale fold snapshot would not
 * match the restored log).
 */
export async function restoreNatsBackup(backup: BackupFile, opts: NatsStoreOptions, onBytes?: (written: number) => void): Promise<RestoreSummary> {
  const h = backup.header;
  if (h.mode !== 'nats' || !h.nats || h.prefix === null) {
    throw new RestoreError('WRONG_MODE', `${backup.file} is a backup of an embedded store, not of a NATS stream: restore it with --data-dir DIR`);
  }
  const prefix = opts.prefix ?? h.prefix;
  if (prefix !== h.prefix) {
    throw new RestoreError(
      'WRONG_MODE',
      `${backup.file} holds the stream of prefix ${h.prefix}; JetStream restores a stream under its own name and subjects, ` +
        `so it can only be restored as prefix ${h.prefix} (on a server where ${h.nats.stream} does not exist), not as ${prefix}`,
    );
  }
  const names = natsNames(prefix);
  if (names.stream !== h.nats.stream) {
    throw new RestoreError('WRONG_MODE', `${backup.file} holds stream ${h.nats.stream}, which is not the stream of prefix ${prefix} (${names.stream})`);
  }
  const nc: NatsConnection = await connectNats(opts.servers, opts, { name: opts.name ?? 'xenops restore', maxReconnectAttempts: 0 });
  try {
    const jsm = await jetstreamManager(nc);
    if (await streamExists(jsm, names.stream)) {
      throw new RestoreError(
        'TARGET_NOT_EMPTY',
        `stream ${names.stream} (prefix ${prefix}) already exists at ${opts.servers}: a restore never overwrites a log; ` +
          `restore onto a server where prefix ${prefix} is free, or delete that stream first if it is truly unwanted`,
      );
    }
    for (const bucketStream of [`KV_${names.kvBucket}`, `OBJ_${names.objectBucket}`]) {
      const s = await streamExists(jsm, bucketStream);
      if (s && s.messages > 0) {
        throw new RestoreError(
          'TARGET_NOT_EMPTY',
          `${bucketStream} at ${opts.servers} still holds snapshots of an earlier prefix ${prefix}, which would not match the restored log: ` +
            `delete that stream first, or restore onto another server`,
        );
      }
    }
    const start = apiReply<{ deliver_subject?: string }>(
      await nc.request(`$JS.API.STREAM.RESTORE.${names.stream}`, JSON.stringify({ config: h.nats.config, state: h.nats.state }), { timeout: API_TIMEOUT_MS }),
      'restore failed',
    );
    if (start.error || !start.deliver_subject) {
      throw new RestoreError('RESTORE_FAILED', `the NATS server refused to restore ${names.stream}: ${start.error ? describeApiError(start.error) : 'no deliver subject in its reply'}`);
    }
    for await (const chunk of backup.payload(onBytes)) {
      const ack = await nc.request(start.deliver_subject, chunk, { timeout: API_TIMEOUT_MS });
      if (ack.data.length > 0) throw new RestoreError('RESTORE_FAILED', `the NATS server refused a chunk of ${names.stream}: ${text.decode(ack.data)}`);
    }
    const done = apiReply<{ state?: { first_seq: number; last_seq: number } }>(
      await nc.request(start.deliver_subject, new Uint8Array(0), { timeout: RESTORE_FINISH_TIMEOUT_MS }),
      'restore failed',
    );
    if (done.error || !done.state) {
      throw new RestoreError('RESTORE_FAILED', `the NATS server could not restore ${names.stream}: ${done.error ? describeApiError(done.error) : 'no stream state in its reply'}`);
    }
    if (backup.snapshots.length > 0) {
      // Through the store's own port: KV, or the object store when large.
      const stores = await openNatsStores({ ...opts, prefix });
      try {
        for (const e of backup.snapshots) await stores.snapshots.put(e.key, { seq: e.seq, data: e.data });
      } finally {
        await stores.close();
      }
    }
    const first = done.state.first_seq > 0 ? done.state.first_seq : done.state.last_seq + 1;
    return { target: `stream ${names.stream} at ${opts.servers}`, first_seq: first, head_seq: done.state.last_seq };
  } catch (err) {
    if (err instanceof RestoreError) throw err;
    throw unavailable(`restore of ${names.stream} at ${opts.servers} failed`, err);
  } finally {
    await nc.close().catch(() => {});
  }
}
