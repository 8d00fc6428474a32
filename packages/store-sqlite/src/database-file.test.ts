import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirInUseError, StoreCorruptError } from './store-errors.js';
import { openEmbeddedStores } from './embedded-stores.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'xdbfile-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Whether another process can take the database's write lock right now. */
function lockableFromAnotherProcess(file: string): boolean {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(file)}, { timeout: 0 });
    try { db.exec('BEGIN IMMEDIATE; COMMIT;'); process.stdout.write('free'); } catch (e) { process.stdout.write(e.code); }
  `;
  return execFileSync(process.execPath, ['-e', script], { cwd: process.cwd() }).toString() === 'free';
}

describe('the embedded database file', () => {
  it('is created whole: nothing but the database is left beside it', async () => {
    const dir = tempDir();
    const s = await openEmbeddedStores({ dataDir: dir });
    await s.close();
    expect(readdirSync(dir).sort()).toEqual(['xenops.db']);
  });

  it('a second open in the same process is refused without loosening the lock other processes see', async () => {
    const dir = tempDir();
    const s = await openEmbeddedStores({ dataDir: dir });
    expect(lockableFromAnotherProcess(join(dir, 'xenops.db'))).toBe(false);
    const err = await openEmbeddedStores({ dataDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirInUseError);
    expect((err as DataDirInUseError).holderPid).toBe(process.pid);
    // Reading the file to check it would have closed a descriptor of it, dropping this process's
    // POSIX lock: the refusal must come before any such check.
    expect(lockableFromAnotherProcess(join(dir, 'xenops.db'))).toBe(false);
    await s.close();
    expect(lockableFromAnotherProcess(join(dir, 'xenops.db'))).toBe(true);
    await (await openEmbeddedStores({ dataDir: dir })).close();
  });

  it('a write-ahead log without its database is refused, not replayed into a new one', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'xenops.db-wal'), Buffer.alloc(4096, 1));
    const err = await openEmbeddedStores({ dataDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect(err).toMatchObject({ reason: 'orphan-wal', code: 'STORE_CORRUPT' });
    expect((err as Error).message).toContain(`the embedded store ${join(dir, 'xenops.db')} is missing but its write-ahead log`);
    expect(existsSync(join(dir, 'xenops.db'))).toBe(false);
  });
});
