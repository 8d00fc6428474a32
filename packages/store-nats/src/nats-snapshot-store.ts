import { randomUUID } from 'node:crypto';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Base64UrlPaddedCodec, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import { errorText, stderrStoreLogger, StoreUnavailableError, type Snapshot, type SnapshotStore, type StoreLogger } from '@xenops/core';
import { isWrongLastSequence, kvKey, unavailable, type NatsNames } from './nats-names.js';
import type { NatsLink } from './nats-link.js';

/**
 * Snapshots live in the KV bucket, one entry per key, in one of two forms:
 *
 * - inline (small snapshots, and every snapshot written before big ones were supported):
 *   8 bytes big-endian seq, then the data;
 * - a manifest pointing at an object of the object store holding the data (snapshots that do not
 *   fit in one NATS message, max_payload being 1 MiB by default): 8 zero bytes (seq 0 to the
 *   inline reader, so an older release sees a snapshot at seq 0 it cannot decode and replays the
 *   log, and any put of its own replaces it), MANIFEST_MAGIC, then JSON `{seq, object, size}`.
 *
 * The KV entry is the commit point: an object is written completely (under a name unique to its
 * generation, never reused) before a manifest names it, and the entry is changed by compare-and-set
 * only, so `get` never sees a half-written snapshot. The object a replaced or deleted manifest
 * named is deleted afterwards; a reader that was streaming it notices and re-reads the manifest.
 */
const MANIFEST_MAGIC = new TextEncoder().encode('xenops-snapshot-object/1\n');
/** Snapshots whose inline value is at most this big stay inline (bounded by the server's max_payload). */
const INLINE_MAX_BYTES = 128 * 1024;
/** Chunk size of snapshot objects (the client clamps it to max_payload). */
const OBJECT_CHUNK_BYTES = 512 * 1024;
/**
 * A writer commits its object within COMMIT_DEADLINE_MS of writing it or gives up (and deletes
 * it); an object no manifest names and older than ORPHAN_GRACE_MS (twice the deadline) is
 * therefore garbage from a writer that died between writing and committing, and is swept.
 */
const COMMIT_DEADLINE_MS = 5 * 60_000;
const ORPHAN_GRACE_MS = 2 * COMMIT_DEADLINE_MS;
/** A read that makes no progress is checked this often (its object may have been replaced) ... */
const READ_STALL_CHECK_MS = 500;
/** ... and abandoned after this long without progress while its object still exists. */
const READ_STALL_LIMIT_MS = 30_000;

/** Inline snapshot values: 8 bytes big-endian seq, then the data. */
function encodeSnapshot(s: Snapshot): Uint8Array {
  const out = new Uint8Array(8 + s.data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(s.seq));
  out.set(s.data, 8);
  return out;
}

function decodeSnapshot(v: Uint8Array): Snapshot {
  if (v.byteLength < 8) throw new StoreUnavailableError('corrupt snapshot value (shorter than 8 bytes)');
  const seq = Number(new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0));
  return { seq, data: v.slice(8) };
}

interface Manifest {
  readonly seq: number;
  /** Name of the object in the object store. */
  readonly object: string;
  readonly size: number;
}

type SnapshotValue = ({ kind: 'inline' } & Snapshot) | ({ kind: 'object' } & Manifest);

/** True when `v` (at `offset`) starts with 8 zero bytes and the manifest magic. */
function hasManifestPrefix(v: Uint8Array, offset: number): boolean {
  if (v.byteLength < offset + 8 + MANIFEST_MAGIC.byteLength) return false;
  for (let i = 0; i < 8; i++) if (v[offset + i] !== 0) return false;
  for (let i = 0; i < MANIFEST_MAGIC.byteLength; i++) if (v[offset + 8 + i] !== MANIFEST_MAGIC[i]) return false;
  return true;
}

function encodeManifest(m: Manifest): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ seq: m.seq, object: m.object, size: m.size }));
  const out = new Uint8Array(8 + MANIFEST_MAGIC.byteLength + json.byteLength);
  out.set(MANIFEST_MAGIC, 8);
  out.set(json, 8 + MANIFEST_MAGIC.byteLength);
  return out;
}

function decodeValue(v: Uint8Array): SnapshotValue {
  if (!hasManifestPrefix(v, 0)) return { kind: 'inline', ...decodeSnapshot(v) };
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(new TextDecoder().decode(v.subarray(8 + MANIFEST_MAGIC.byteLength))) as Partial<Manifest>;
  } catch (err) {
    throw new StoreUnavailableError('corrupt snapshot manifest', { cause: err });
  }
  if (!Number.isSafeInteger(m.seq) || typeof m.object !== 'string' || !Number.isSafeInteger(m.size)) {
    throw new StoreUnavailableError('corrupt snapshot manifest');
  }
  return { kind: 'object', seq: m.seq!, object: m.object, size: m.size! };
}

/**
 * Clean-up after the snapshot itself was stored or removed: its failure does not fail the call (an
 * object left behind is swept by a later put of its key), but it is reported, as store tails
 * report theirs.
 */
async function bestEffort(log: StoreLogger, what: string, work: Promise<unknown>): Promise<void> {
  try {
    await work;
  } catch (err) {
    log(`could not ${what} (a later put of that key sweeps what is left): ${errorText(err)}`);
  }
}

const STALLED = Symbol('stalled');

function within<T>(p: Promise<T>, ms: number): Promise<T | typeof STALLED> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<typeof STALLED>((resolve) => (timer = setTimeout(() => resolve(STALLED), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

export class NatsSnapshotStore implements SnapshotStore {
  private closed = false;
  private readonly objStream: string;
  private readonly inlineMax: number;

  constructor(
    private readonly kv: KV,
    private readonly os: ObjectStore,
    private readonly jsm: JetStreamManager,
    private readonly names: NatsNames,
    maxPayload: number,
    private readonly log: StoreLogger = stderrStoreLogger,
    /** Fails every operation at once while NATS is down (absent: tools without a link). */
    private readonly link?: NatsLink,
  ) {
    this.objStream = `OBJ_${names.objectBucket}`;
    // room for the KV put's headers
    this.inlineMax = Math.max(0, Math.min(INLINE_MAX_BYTES, maxPayload - 4096));
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the NATS snapshot store is closed');
  }

  get(key: string): Promise<Snapshot | undefined> {
    return this.link ? this.link.run(`snapshot get ${key}`, () => this.getNow(key)) : this.getNow(key);
  }

  put(key: string, snapshot: Snapshot): Promise<void> {
    return this.link ? this.link.run(`snapshot put ${key}`, () => this.putNow(key, snapshot)) : this.putNow(key, snapshot);
  }

  delete(key: string): Promise<void> {
    return this.link ? this.link.run(`snapshot delete ${key}`, () => this.deleteNow(key)) : this.deleteNow(key);
  }

  private async getNow(key: string): Promise<Snapshot | undefined> {
    this.check();
    const k = kvKey(key);
    try {
      let missing: string | undefined;
      for (let attempt = 0; ; attempt++) {
        const e = await this.kv.get(k);
        if (!e || e.operation !== 'PUT') return undefined;
        const v = decodeValue(e.value);
        if (v.kind === 'inline') return { seq: v.seq, data: v.data };
        const data = await this.readObject(v);
        if (data) return { seq: v.seq, data };
        // The object is gone: a writer replaced the manifest and deleted it while we read. The
        // same manifest twice with its object gone is a lost snapshot, not a race.
        if (v.object === missing || attempt >= 10) {
          throw new StoreUnavailableError(`the object ${v.object} of the snapshot (seq ${v.seq}) is missing`);
        }
        missing = v.object;
      }
    } catch (err) {
      throw unavailable(`snapshot get ${key} failed`, err);
    }
  }

  /** The object's bytes, or undefined when it no longer exists (before or while reading it). */
  private async readObject(m: Manifest): Promise<Uint8Array | undefined> {
    const r = await this.os.get(m.object);
    if (!r) return undefined;
    r.error.catch(() => {}); // the stream reports the same error
    if (r.info.size !== m.size) {
      throw new StoreUnavailableError(`the object ${m.object} holds ${r.info.size} bytes, its manifest says ${m.size}`);
    }
    const out = new Uint8Array(m.size);
    let offset = 0;
    const reader = r.data.getReader();
    try {
      let next = reader.read();
      let progressAt = Date.now();
      for (;;) {
        next.catch(() => {});
        let res: Awaited<typeof next> | typeof STALLED;
        try {
          res = await within(next, READ_STALL_CHECK_MS);
        } catch (err) {
          // e.g. a digest mismatch: chunks were purged under the read
          if (!(await this.objectExists(m.object))) return undefined;
          throw err;
        }
        if (res === STALLED) {
          // The chunks of a deleted object stop coming without an error.
          if (!(await this.objectExists(m.object))) return undefined;
          if (Date.now() - progressAt > READ_STALL_LIMIT_MS) {
            throw new StoreUnavailableError(`reading the object ${m.object} made no progress for ${READ_STALL_LIMIT_MS / 1000} s`);
          }
          continue;
        }
        if (res.done) break;
        if (offset + res.value.byteLength > out.byteLength) {
          throw new StoreUnavailableError(`the object ${m.object} is longer than its ${m.size} bytes`);
        }
        out.set(res.value, offset);
        offset += res.value.byteLength;
        progressAt = Date.now();
        next = reader.read();
      }
    } finally {
      reader.cancel().catch(() => {}); // stops the consumer if we leave early
    }
    if (offset !== out.byteLength) {
      if (!(await this.objectExists(m.object))) return undefined;
      throw new StoreUnavailableError(`the object ${m.object} ended after ${offset} of its ${m.size} bytes`);
    }
    return out;
  }

  private async objectExists(name: string): Promise<boolean> {
    const info = await this.os.info(name);
    return info !== null && !info.deleted;
  }

  private metaSubject(name: string): string {
    return `$O.${this.names.objectBucket}.M.${Base64UrlPaddedCodec.encode(name)}`;
  }

  /** Deletes an object completely: its chunks and its metadata (no tombstone left behind). */
  private async deleteObject(name: string): Promise<void> {
    await this.os.delete(name);
    await this.jsm.streams.purge(this.objStream, { filter: this.metaSubject(name) });
  }

  private async putNow(key: string, snapshot: Snapshot): Promise<void> {
    this.check();
    const k = kvKey(key);
    let inline: Uint8Array | undefined = encodeSnapshot(snapshot);
    // Too big for one message, or an inline value that would read back as a manifest: an object.
    if (inline.byteLength > this.inlineMax || hasManifestPrefix(inline, 0)) inline = undefined;
    let own: { info: ObjectInfo; writtenAt: number } | undefined;
    let committed = false;
    try {
      // Compare-and-set on the key's revision: a racing writer makes us re-read and re-decide.
      for (let attempt = 0; ; attempt++) {
        const e = await this.kv.get(k);
        const current = e && e.operation === 'PUT' ? decodeValue(e.value) : undefined;
        if (current && current.seq > snapshot.seq) return;
        let value = inline;
        if (!value) {
          own ??= {
            info: await this.os.putBlob(
              { name: `${k}@${snapshot.seq}.${randomUUID()}`, options: { max_chunk_size: OBJECT_CHUNK_BYTES } },
              snapshot.data,
            ),
            writtenAt: performance.now(),
          };
          if (performance.now() - own.writtenAt > COMMIT_DEADLINE_MS) {
            throw new StoreUnavailableError(`could not commit within ${COMMIT_DEADLINE_MS / 1000} s of writing the data`);
          }
          value = encodeManifest({ seq: snapshot.seq, object: own.info.name, size: snapshot.data.byteLength });
        }
        try {
          await this.kv.put(k, value, { previousSeq: e ? e.revision : 0 });
          committed = true;
        } catch (err) {
          if (!isWrongLastSequence(err) || attempt >= 100) throw err;
          continue;
        }
        // Best effort from here: the snapshot is stored.
        if (current?.kind === 'object') await bestEffort(this.log, `delete the replaced object ${current.object}`, this.deleteObject(current.object));
        if (own) await bestEffort(this.log, `sweep the orphaned objects of ${key}`, this.sweepOrphans(k, own.info.name));
        return;
      }
    } catch (err) {
      throw unavailable(`snapshot put ${key} failed`, err);
    } finally {
      // Lost the race, or failed: our object is nobody's.
      if (own && !committed) await bestEffort(this.log, `delete the uncommitted object ${own.info.name}`, this.deleteObject(own.info.name));
    }
  }

  /**
   * Deletes the objects of key `k` left behind by writers that died between writing an object and
   * committing it (or failed to delete a replaced one): every object of `k` but `keep` that was
   * written more than ORPHAN_GRACE_MS before `keep` (server timestamps), and every tombstone.
   */
  private async sweepOrphans(k: string, keep: string): Promise<void> {
    const metaPrefix = `$O.${this.names.objectBucket}.M.`;
    const si = await this.jsm.streams.info(this.objStream, { subjects_filter: `${metaPrefix}>` });
    const subjects = Object.keys(si.state.subjects ?? {});
    if (subjects.length <= 1) return;
    const kept = await this.jsm.streams.getMessage(this.objStream, { last_by_subj: this.metaSubject(keep) });
    if (!kept) return;
    const cutoff = kept.time.getTime() - ORPHAN_GRACE_MS;
    for (const subject of subjects) {
      const name = Base64UrlPaddedCodec.decode(subject.slice(metaPrefix.length)) as string;
      if (!name.startsWith(`${k}@`) || name === keep) continue;
      const m = await this.jsm.streams.getMessage(this.objStream, { last_by_subj: subject });
      if (!m) continue;
      const deleted = (m.json<{ deleted?: boolean }>().deleted ?? false) === true;
      if (deleted || m.time.getTime() < cutoff) await this.deleteObject(name);
    }
  }

  private async deleteNow(key: string): Promise<void> {
    this.check();
    const k = kvKey(key);
    try {
      // Compare-and-set, so the object we delete is the one the manifest we removed named.
      for (let attempt = 0; ; attempt++) {
        const e = await this.kv.get(k);
        if (!e || e.operation !== 'PUT') return;
        let current: SnapshotValue | undefined;
        try {
          current = decodeValue(e.value);
        } catch {
          current = undefined; // corrupt: delete it all the same
        }
        try {
          await this.kv.delete(k, { previousSeq: e.revision });
        } catch (err) {
          if (!isWrongLastSequence(err) || attempt >= 100) throw err;
          continue;
        }
        if (current?.kind === 'object') await bestEffort(this.log, `delete the object ${current.object}`, this.deleteObject(current.object));
        return;
      }
    } catch (err) {
      throw unavailable(`snapshot delete ${key} failed`, err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
