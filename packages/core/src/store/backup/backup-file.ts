/**
 * The backup file (`xenops backup` / `xenops restore`, issue 11 item 8): one self-checking file
 * for either store.
 *
 *     "XENOPS-BACKUP\n"                       magic (14 bytes)
 *     record*                                 type (1 ASCII byte), length (u32 big-endian), body
 *       H  header (JSON, BackupHeader)        first, once
 *       S  snapshot entry                     u32 JSON length, JSON {key, seq}, the snapshot's bytes
 *       D  payload chunk                      the embedded database file, or the JetStream stream
 *                                             snapshot, cut in chunks in order
 *       E  end (JSON, BackupEnd)              last: counts and the SHA-256 of every byte before it
 *
 * The header comes first so that a restore can refuse the wrong mode or target before reading
 * further; the end record lets a reader tell a truncated or damaged file from a whole one. Records
 * are bounded (MAX_RECORD_BYTES), so a damaged length cannot make a reader allocate without limit.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';

export const BACKUP_FORMAT = 'xenops-backup';
export const BACKUP_VERSION = 1;
const MAGIC = Buffer.from('XENOPS-BACKUP\n', 'latin1');
const RECORD_HEAD = 5;
/** The largest record a reader accepts (a fold snapshot of a very large pool fits many times). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

export type BackupMode = 'embedded' | 'nats';

/** What the backup holds, written before its data. */
export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: number;
  readonly mode: BackupMode;
  /** NATS: the prefix whose stream this is; embedded: null. */
  readonly prefix: string | null;
  /**
   * The newest seq the backup holds. NATS: the stream's last seq when the snapshot began (a copy
   * taken under load may hold a few later messages; a restore reports the exact range).
   */
  readonly head_seq: number;
  /** The oldest seq it holds (above 1 after retention; `head_seq + 1` when the log is empty). */
  readonly first_seq: number;
  /** RFC 3339 time the backup was taken. */
  readonly created: string;
  /** Version of the xenops that wrote it. */
  readonly writer: string;
  /** Embedded: facts about the database file carried as the payload. */
  readonly embedded?: { readonly schema_version: number; readonly bytes: number };
  /** NATS: the stream's name, configuration and state as the snapshot API reported them. */
  readonly nats?: { readonly stream: string; readonly config: Record<string, unknown>; readonly state: Record<string, unknown> };
}

interface BackupEnd {
  readonly records: number;
  readonly payload_bytes: number;
  readonly sha256: string;
}

export interface BackupSnapshotEntry {
  readonly key: string;
  readonly seq: number;
  readonly data: Uint8Array;
}

export type BackupFileProblem = 'missing' | 'not-a-backup' | 'truncated' | 'corrupt' | 'unsupported-version';

/** A backup file that cannot be used, with what is wrong with it. */
export class BackupFileError extends Error {
  override readonly name = 'BackupFileError';
  readonly code: string;
  constructor(
    readonly file: string,
    readonly problem: BackupFileProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = `BACKUP_${problem.toUpperCase().replace(/-/g, '_')}`;
  }
}

/** A restore that cannot go ahead: wrong mode, target in use or not empty, refused by the store. */
export class RestoreError extends Error {
  override readonly name = 'RestoreError';
  constructor(
    readonly code: 'WRONG_MODE' | 'TARGET_NOT_EMPTY' | 'RESTORE_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function record(type: 'H' | 'S' | 'D' | 'E', body: Uint8Array): Buffer {
  const head = Buffer.alloc(RECORD_HEAD);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.byteLength, 1);
  return Buffer.concat([head, body]);
}

/**
 * Encodes a backup as it is produced: each call returns the bytes to send or write next, and
 * `end()` the closing record with the digest of everything before it.
 */
export class BackupWriter {
  private readonly hash: Hash = createHash('sha256');
  private records = 0;
  private payloadBytes = 0;
  private state: 'new' | 'open' | 'ended' = 'new';

  private emit(type: 'H' | 'S' | 'D', body: Uint8Array): Buffer {
    const bytes = record(type, body);
    this.hash.update(bytes);
    this.records++;
    return bytes;
  }

  header(h: BackupHeader): Buffer {
    if (this.state !== 'new') throw new Error('BackupWriter: the header comes first, once');
    this.state = 'open';
    this.hash.update(MAGIC);
    return Buffer.concat([MAGIC, this.emit('H', Buffer.from(JSON.stringify(h), 'utf8'))]);
  }

  snapshot(entry: BackupSnapshotEntry): Buffer {
    this.expectOpen();
    const meta = Buffer.from(JSON.stringify({ key: entry.key, seq: entry.seq }), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(meta.length, 0);
    return this.emit('S', Buffer.concat([len, meta, entry.data]));
  }

  /** A payload chunk (any size up to MAX_RECORD_BYTES). */
  data(chunk: Uint8Array): Buffer {
    this.expectOpen();
    this.payloadBytes += chunk.byteLength;
    return this.emit('D', chunk);
  }

  end(): Buffer {
    this.expectOpen();
    this.state = 'ended';
    const end: BackupEnd = { records: this.records, payload_bytes: this.payloadBytes, sha256: this.hash.digest('hex') };
    return record('E', Buffer.from(JSON.stringify(end), 'utf8'));
  }

  private expectOpen(): void {
    if (this.state !== 'open') throw new Error(`BackupWriter: ${this.state === 'new' ? 'no header yet' : 'already ended'}`);
  }
}

/** Reads a file front to back as records, with the running digest of the bytes before each. */
class RecordReader {
  private buf = Buffer.alloc(0);
  private offset = 0;
  private done = false;
  private readonly chunks: AsyncIterator<Buffer>;
  readonly hash: Hash = createHash('sha256');

  constructor(
    private readonly file: string,
    readonly size: number,
    private readonly onBytes?: (bytesRead: number) => void,
  ) {
    this.chunks = createReadStream(file, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Exactly n bytes, or fewer at the end of the file. */
  async take(n: number): Promise<Buffer> {
    if (this.buf.length < n && !this.done) {
      const parts: Buffer[] = [this.buf];
      let have = this.buf.length;
      while (have < n && !this.done) {
        const next = await this.chunks.next();
        if (next.done) this.done = true;
        else {
          parts.push(next.value);
          have += next.value.length;
        }
      }
      this.buf = Buffer.concat(parts, have);
    }
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.offset += out.length;
    this.onBytes?.(this.offset);
    return out;
  }

  get position(): number {
    return this.offset;
  }

  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}

interface RawRecord {
  readonly type: string;
  readonly body: Buffer;
  readonly at: number;
}

async function* records(reader: RecordReader, file: string): AsyncGenerator<RawRecord> {
  for (;;) {
    const at = reader.position;
    const head = await reader.take(RECORD_HEAD);
    if (head.length === 0) return;
    if (head.length < RECORD_HEAD) throw new BackupFileError(file, 'truncated', `${file} is truncated: it ends inside a record header at byte ${at}`);
    const type = head.toString('latin1', 0, 1);
    const length = head.readUInt32BE(1);
    if (!'HSDE'.includes(type)) throw new BackupFileError(file, 'corrupt', `${file} is damaged: unknown record type 0x${head[0]!.toString(16)} at byte ${at}`);
    if (length > MAX_RECORD_BYTES) throw new BackupFileError(file, 'corrupt', `${file} is damaged: a record of ${length} bytes at byte ${at} is larger than any backup writes`);
    const body = await reader.take(length);
    if (body.length < length) {
      throw new BackupFileError(file, 'truncated', `${file} is truncated: it ends inside a record at byte ${reader.position} (of ${at + RECORD_HEAD + length})`);
    }
    // The digest covers every record before the end record.
    if (type !== 'E') reader.hash.update(head).update(body);
    yield { type, body, at };
  }
}

function parseJson<T>(file: string, what: string, body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new BackupFileError(file, 'corrupt', `${file} is damaged: its ${what} is not valid JSON`);
  }
}

function checkHeader(file: string, h: Partial<BackupHeader>): BackupHeader {
  if (h.format !== BACKUP_FORMAT) throw new BackupFileError(file, 'not-a-backup', `${file} is not a xenops backup (its header names format ${JSON.stringify(h.format)})`);
  if (typeof h.version !== 'number' || h.version > BACKUP_VERSION) {
    throw new BackupFileError(file, 'unsupported-version', `${file} is a backup of format version ${String(h.version)}, newer than this xenops reads (${BACKUP_VERSION}): use a newer xenops`);
  }
  if ((h.mode !== 'embedded' && h.mode !== 'nats') || !Number.isSafeInteger(h.head_seq) || !Number.isSafeInteger(h.first_seq)) {
    throw new BackupFileError(file, 'corrupt', `${file} is damaged: its header lacks the mode or the seqs`);
  }
  if (h.mode === 'nats' && (typeof h.prefix !== 'string' || !h.nats || typeof h.nats.stream !== 'string')) {
    throw new BackupFileError(file, 'corrupt', `${file} is damaged: a NATS backup without its prefix or stream`);
  }
  return h as BackupHeader;
}

/** A backup file whose every byte has been checked. */
export interface BackupFile {
  readonly file: string;
  readonly bytes: number;
  readonly header: BackupHeader;
  readonly snapshots: readonly BackupSnapshotEntry[];
  readonly payloadBytes: number;
  /** Reads the payload chunks again, in order. */
  payload(onBytes?: (payloadBytesRead: number) => void): AsyncIterable<Buffer>;
}

/**
 * Checks a whole backup file (structure, digest, header) and returns what it holds. Throws
 * BackupFileError naming the file and the problem: missing, not a backup, truncated, damaged, or
 * written by a newer xenops.
 */
export async function readBackupFile(file: string, onBytes?: (bytesRead: number, total: number) => void): Promise<BackupFile> {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new BackupFileError(file, 'not-a-backup', `${file} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof BackupFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new BackupFileError(file, 'missing', code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const reader = new RecordReader(file, size, onBytes ? (n) => onBytes(n, size) : undefined);
  try {
    const magic = await reader.take(MAGIC.length);
    if (!magic.equals(MAGIC)) {
      if (magic.length < MAGIC.length && MAGIC.subarray(0, magic.length).equals(magic)) {
        throw new BackupFileError(file, 'truncated', `${file} is truncated: ${size} bytes, not even the backup's signature`);
      }
      throw new BackupFileError(file, 'not-a-backup', `${file} is not a xenops backup (it does not start with the backup signature)`);
    }
    reader.hash.update(magic);
    let header: BackupHeader | undefined;
    const snapshots: BackupSnapshotEntry[] = [];
    let payloadBytes = 0;
    let count = 0;
    for await (const r of records(reader, file)) {
      if (header === undefined) {
        if (r.type !== 'H') throw new BackupFileError(file, 'corrupt', `${file} is damaged: its first record is not the header`);
        header = checkHeader(file, parseJson<Partial<BackupHeader>>(file, 'header', r.body));
        count++;
        continue;
      }
      if (r.type === 'H') throw new BackupFileError(file, 'corrupt', `${file} is damaged: a second header at byte ${r.at}`);
      if (r.type === 'S') {
        const metaLength = r.body.length >= 4 ? r.body.readUInt32BE(0) : Infinity;
        if (metaLength + 4 > r.body.length) throw new BackupFileError(file, 'corrupt', `${file} is damaged: a snapshot record at byte ${r.at} is malformed`);
        const meta = parseJson<{ key?: unknown; seq?: unknown }>(file, 'snapshot record', r.body.subarray(4, 4 + metaLength));
        if (typeof meta.key !== 'string' || !Number.isSafeInteger(meta.seq)) {
          throw new BackupFileError(file, 'corrupt', `${file} is damaged: a snapshot record at byte ${r.at} lacks its key or seq`);
        }
        snapshots.push({ key: meta.key, seq: meta.seq as number, data: new Uint8Array(r.body.subarray(4 + metaLength)) });
        count++;
      } else if (r.type === 'D') {
        payloadBytes += r.body.length;
        count++;
      } else {
        const end = parseJson<Partial<BackupEnd>>(file, 'end record', r.body);
        const digest = reader.hash.digest('hex');
        if (end.sha256 !== digest || end.records !== count || end.payload_bytes !== payloadBytes) {
          throw new BackupFileError(file, 'corrupt', `${file} is damaged: its content does not match the checksum written at its end`);
        }
        if (reader.position !== size) {
          throw new BackupFileError(file, 'corrupt', `${file} is damaged: ${size - reader.position} unexpected bytes after the end of the backup`);
        }
        const h = header;
        return {
          file,
          bytes: size,
          header: h,
          snapshots,
          payloadBytes,
          payload: (onPayload) => payloadOf(file, onPayload),
        };
      }
    }
    throw new BackupFileError(
      file,
      'truncated',
      header === undefined ? `${file} is truncated: it ends before its header` : `${file} is truncated: it ends after ${size} bytes, before the end record`,
    );
  } finally {
    await reader.close();
  }
}

async function* payloadOf(file: string, onPayload?: (n: number) => void): AsyncGenerator<Buffer> {
  const reader = new RecordReader(file, 0);
  let n = 0;
  try {
    await reader.take(MAGIC.length);
    for await (const r of records(reader, file)) {
      if (r.type !== 'D') continue;
      n += r.body.length;
      yield r.body;
      onPayload?.(n);
    }
  } finally {
    await reader.close();
  }
}

/** What a restore wrote (each store adapter restores its own kind of backup). */
export interface RestoreSummary {
  /** Where it went: the database file, or the NATS stream. */
  readonly target: string;
  readonly first_seq: number;
  readonly head_seq: number;
}
