/**
 * Backup and restore at the store level (issue 11 item 8), both stores, real SQLite and real NATS:
 * a backup taken while appends carry on restores to exactly the messages (seqs, streams, bytes,
 * message ids) and snapshots it reports; a log shortened by retention travels with the snapshot
 * that covers the cut; a damaged, truncated, foreign or newer backup file is refused with its
 * problem named; a restore never overwrites.
 */
import { createWriteStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { BackupFileError, readBackupFile, RestoreError, type StoreBackup, type Stores } from '@xenops/core';
import { lockDataDir, openEmbeddedStores, restoreEmbeddedBackup } from '@xenops/store-sqlite';
import { openNatsStores, restoreNatsBackup } from '@xenops/store-nats';
import { afterAll, describe, expect, it } from 'vitest';
import { startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { cleanupAll, makeTempDir, NATS_URL, trackNatsPrefix, uniquePrefix } from '../support/xenopsd.js';

let own: OwnNatsServer | undefined;
afterAll(async () => {
  await own?.stop('SIGKILL');
  await cleanupAll();
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function messages(stores: Stores, upTo?: number): Promise<[number, string, string][]> {
  const out: [number, string, string][] = [];
  for await (const m of stores.log.read(0, upTo)) out.push([m.seq, m.stream, dec(m.data)]);
  return out;
}

/** Writes a backup's bytes to a file, appending to the live store between chunks. */
async function saveWhileWriting(backup: StoreBackup, file: string, stores: Stores, tag: string): Promise<number> {
  const out = createWriteStream(file);
  let appended = 0;
  for await (const chunk of backup.bytes) {
    if (!out.write(chunk)) await once(out, 'drain');
    await stores.log.append({ stream: 'vm/late', data: enc(`${tag}-${appended++}`) });
  }
  out.end();
  await once(out, 'finish');
  return appended;
}

describe('embedded backup and restore', () => {
  it('restores exactly what the online copy holds, snapshots and message ids included', async () => {
    const src = await openEmbeddedStores({ dataDir: await makeTempDir('xbk-src') });
    for (let i = 0; i < 300; i++) await src.log.append({ stream: `vm/${i % 7}`, data: enc(`m${i} ${'x'.repeat(i % 50)}`), messageId: `id-${i}` });
    await src.snapshots.put('fold', { seq: 150, data: enc('fold at 150') });
    // Appends issued while SQLite's online backup copies pages: they land on the same connection.
    const during = Promise.all(Array.from({ length: 50 }, (_, i) => src.log.append({ stream: 'vm/during', data: enc(`d${i}`) })));
    const backup = await src.backup!({ writer: 'test', snapshotKeys: ['fold'] });
    await during;
    const file = path.join(await makeTempDir('xbk-file'), 'a.xbk');
    const late = await saveWhileWriting(backup, file, src, 'late');
    expect(late).toBeGreaterThan(0);

    const checked = await readBackupFile(file);
    expect(checked.header).toMatchObject({ format: 'xenops-backup', version: 1, mode: 'embedded', prefix: null, first_seq: 1, writer: 'test' });
    const h = checked.header.head_seq;
    expect(h).toBe(backup.header.head_seq);
    expect(h).toBeGreaterThanOrEqual(350);
    expect(await src.log.head()).toBe(h + late); // later appends are not in it

    const dir = path.join(await makeTempDir('xbk-dst'), 'new-data-dir');
    let written = 0;
    const summary = await restoreEmbeddedBackup(checked, dir, (n) => (written = n));
    expect(summary).toEqual({ target: path.join(dir, 'xenops.db'), first_seq: 1, head_seq: h });
    expect(written).toBe(checked.payloadBytes);
    const dst = await openEmbeddedStores({ dataDir: dir });
    expect(await messages(dst)).toEqual(await messages(src, h));
    expect(dec((await dst.snapshots.get('fold'))!.data)).toBe('fold at 150');
    // Message ids came along: a retried append is still recognised.
    expect(await dst.log.append({ stream: 'vm/3', data: enc('retry'), messageId: 'id-3' })).toBe(4);
    expect(await dst.log.append({ stream: 'vm/3', data: enc('new') })).toBe(h + 1);
    await dst.close();

    // Never over an existing store, nor into a non-empty directory, nor a data dir in use.
    await expect(restoreEmbeddedBackup(checked, dir)).rejects.toMatchObject({ name: 'RestoreError', code: 'TARGET_NOT_EMPTY' });
    const other = await makeTempDir('xbk-other');
    await writeFile(path.join(other, 'notes.txt'), 'mine');
    await expect(restoreEmbeddedBackup(checked, other)).rejects.toThrow(`data dir ${other} is not empty (it holds notes.txt)`);
    const busy = await makeTempDir('xbk-busy');
    const holder = lockDataDir(busy);
    await expect(restoreEmbeddedBackup(checked, busy)).rejects.toMatchObject({ name: 'DataDirInUseError', holderPid: process.pid });
    holder.release();
    // What a killed restore leaves behind (its lock file, its half-written copy) is not in the way.
    await writeFile(path.join(busy, 'xenops.db.restore-99999'), 'half a database');
    expect((await restoreEmbeddedBackup(checked, busy)).head_seq).toBe(h);
    expect((await readdir(busy)).sort()).toEqual(['xenops.db', 'xenopsd.lock']);
    await expect(restoreNatsBackup(checked, { servers: NATS_URL })).rejects.toMatchObject({ code: 'WRONG_MODE' });
    await src.close();
  });

  it('refuses a missing, truncated, damaged, foreign or newer backup file, naming the problem', async () => {
    const src = await openEmbeddedStores({ dataDir: await makeTempDir('xbk-bad') });
    for (let i = 0; i < 50; i++) await src.log.append({ stream: 's', data: enc(`m${i}`) });
    const dir = await makeTempDir('xbk-badfiles');
    const good = path.join(dir, 'good.xbk');
    await saveWhileWriting(await src.backup!({ writer: 'test' }), good, src, 'x');
    await src.close();
    const bytes = await readFile(good);
    const variant = async (name: string, b: Uint8Array): Promise<string> => {
      const f = path.join(dir, name);
      await writeFile(f, b);
      return f;
    };
    const problem = async (file: string) => {
      const e = await readBackupFile(file).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(BackupFileError);
      return e as BackupFileError;
    };

    expect(await problem(path.join(dir, 'nope.xbk'))).toMatchObject({ problem: 'missing', code: 'BACKUP_MISSING', message: `${path.join(dir, 'nope.xbk')} does not exist` });
    for (const cut of [0, 5, 30, Math.floor(bytes.length / 2), bytes.length - 1]) {
      const e = await problem(await variant(`cut-${cut}.xbk`, bytes.subarray(0, cut)));
      expect(e.problem, `cut at ${cut}`).toBe('truncated');
      expect(e.message).toMatch(/is truncated/);
    }
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)]! ^= 0xff;
    expect((await problem(await variant('flipped.xbk', flipped))).message).toMatch(/is damaged: its content does not match the checksum/);
    const foreign = await problem(await variant('foreign.xbk', Buffer.from('SQLite format 3\0 and so on, not a backup at all')));
    expect(foreign).toMatchObject({ problem: 'not-a-backup' });
    const trailing = await problem(await variant('trailing.xbk', Buffer.concat([bytes, Buffer.from('junk')])));
    expect(trailing.message).toMatch(/unexpected bytes after the end/);
    // A header from a newer format: the reader refuses rather than guessing.
    const newer = Buffer.from(bytes);
    const at = newer.indexOf('"version":1');
    newer.write('"version":9', at, 'latin1');
    expect(await problem(await variant('newer.xbk', newer))).toMatchObject({ problem: 'unsupported-version' });
  });
});

describe('NATS backup and restore', () => {
  it('copies the stream as it is (seqs, subjects, config) with the snapshot covering a retention cut, onto a fresh server', async () => {
    const prefix = uniquePrefix('bk');
    trackNatsPrefix(prefix);
    const src = await openNatsStores({ servers: NATS_URL, prefix });
    for (let i = 1; i <= 10; i++) await src.log.append({ stream: `vm/v${i % 3}`, data: enc(`m${i}`), messageId: `id-${i}` });
    await src.snapshots.put('fold', { seq: 6, data: enc('fold at 6') });
    await src.log.truncateBefore(7);
    for (let i = 11; i <= 12; i++) await src.log.append({ stream: 'vm/v0', data: enc(`m${i}`) });

    const backup = await src.backup!({ writer: 'test', snapshotKeys: ['fold', 'absent'] });
    expect(backup.header).toMatchObject({ mode: 'nats', prefix, first_seq: 7, head_seq: 12, nats: { stream: `${prefix}_EVENTS` } });
    const file = path.join(await makeTempDir('xbk-nats'), 'n.xbk');
    await saveWhileWriting(backup, file, src, 'late');
    const checked = await readBackupFile(file);
    expect(checked.snapshots.map((s) => [s.key, s.seq, dec(s.data)])).toEqual([['fold', 6, 'fold at 6']]);

    own = await startOwnNatsServer();
    const summary = await restoreNatsBackup(checked, { servers: own.url });
    expect(summary.first_seq).toBe(7);
    expect(summary.head_seq).toBeGreaterThanOrEqual(12);
    const dst = await openNatsStores({ servers: own.url, prefix });
    const restored = await messages(dst);
    expect(restored.slice(0, 6)).toEqual(await messages(src, 12));
    expect(restored).toEqual(await messages(src, summary.head_seq));
    expect(await dst.log.firstSeq()).toBe(7);
    expect(await dst.log.lastSeqOf('vm/v1')).toBe(10);
    expect(dec((await dst.snapshots.get('fold'))!.data)).toBe('fold at 6');
    expect(await dst.log.append({ stream: 'vm/v1', data: enc('next'), expectedLastSeq: 10 })).toBe(summary.head_seq + 1);
    await dst.close();

    // Never over an existing stream; only as its own prefix.
    await expect(restoreNatsBackup(checked, { servers: own.url })).rejects.toMatchObject({ name: 'RestoreError', code: 'TARGET_NOT_EMPTY' });
    const renamed = await restoreNatsBackup(checked, { servers: own.url, prefix: 'elsewhere' }).catch((e: unknown) => e);
    expect(renamed).toBeInstanceOf(RestoreError);
    expect((renamed as Error).message).toContain(`can only be restored as prefix ${prefix}`);
    await expect(restoreEmbeddedBackup(checked, await makeTempDir('xbk-wrong'))).rejects.toMatchObject({ code: 'WRONG_MODE' });
    await src.close();
  });

  it('refuses to back up a log cut by retention when no snapshot covers the cut', async () => {
    const prefix = uniquePrefix('bkcut');
    trackNatsPrefix(prefix);
    const src = await openNatsStores({ servers: NATS_URL, prefix });
    for (let i = 1; i <= 5; i++) await src.log.append({ stream: 's', data: enc(`m${i}`) });
    await src.log.truncateBefore(4);
    await expect(src.backup!({ writer: 'test', snapshotKeys: ['fold'] })).rejects.toThrow(/starts at seq 4 \(retention\) and no snapshot covers the seqs before it/);
    await src.close();
  });
});
