import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConcurrencyError, StoreUnavailableError } from '@xenops/core';
import { collect, describeStoreContract } from '@xenops/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { openEmbeddedStores } from './index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const tempDirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'xenops-store-'));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

describeStoreContract('embedded', (log) => openEmbeddedStores({ dataDir: tempDir(), log }));

describe('embedded store specifics', () => {
  it('keeps everything across close and reopen; seqs are never reused', async () => {
    const dir = tempDir();
    let s = await openEmbeddedStores({ dataDir: dir });
    const a = await s.log.append({ stream: 'vm/a', data: enc('a'), messageId: 'm1' });
    const b = await s.log.append({ stream: 'vm/b', data: enc('b') });
    await s.snapshots.put('vm/a', { seq: a, data: enc('snap') });
    await s.close();

    s = await openEmbeddedStores({ dataDir: dir });
    expect(await s.log.head()).toBe(b);
    expect((await collect(s.log.read(0))).map((m) => [m.seq, m.stream, dec(m.data)])).toEqual([
      [a, 'vm/a', 'a'],
      [b, 'vm/b', 'b'],
    ]);
    expect(await s.log.append({ stream: 'vm/a', data: enc('a'), messageId: 'm1' })).toBe(a);
    await expect(s.log.append({ stream: 'vm/a', data: enc('x'), expectedLastSeq: 0 })).rejects.toBeInstanceOf(ConcurrencyError);
    const c = await s.log.append({ stream: 'vm/a', data: enc('c'), expectedLastSeq: a });
    expect(c).toBe(b + 1);
    expect(dec((await s.snapshots.get('vm/a'))!.data)).toBe('snap');
    await s.close();
  });

  it('refuses a data dir that is already open, with a clear error', async () => {
    const dir = tempDir();
    const s = await openEmbeddedStores({ dataDir: dir });
    const err = await openEmbeddedStores({ dataDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/in use by process \d+/);
    expect((err as Error).message).toContain(dir);
    // the holder is unaffected
    expect(await s.log.append({ stream: 's', data: enc('still fine') })).toBe(1);
    await s.close();
    // released on close
    const again = await openEmbeddedStores({ dataDir: dir });
    expect(await again.log.head()).toBe(1);
    await again.close();
  });

  it('refuses a data dir locked by another process, and recovers after that process is killed', async () => {
    const dir = tempDir();
    // Create the database, then let a child process hold it the way openEmbeddedStores does.
    await (await openEmbeddedStores({ dataDir: dir })).close();
    const script = `
      const Database = require('better-sqlite3');
      const db = new Database(${JSON.stringify(join(dir, 'xenops.db'))});
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.exec("BEGIN IMMEDIATE; INSERT INTO events (stream, data) VALUES ('child', x'00'); COMMIT;");
      process.stdout.write('locked\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
        child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      await expect(openEmbeddedStores({ dataDir: dir })).rejects.toThrow(/in use by/);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const s = await openEmbeddedStores({ dataDir: dir });
    expect((await collect(s.log.read(0))).map((m) => m.stream)).toEqual(['child']);
    await s.close();
  });
});
