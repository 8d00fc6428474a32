import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDataDir, PID_FILE } from './data-dir-lock.js';
import { DataDirInUseError } from './store-errors.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'xlock-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('lockDataDir', () => {
  it('refuses a second holder in the same process, naming the holder, until released', () => {
    const dir = tempDir();
    const lock = lockDataDir(dir);
    expect(readFileSync(join(dir, PID_FILE), 'utf8').trim()).toBe(String(process.pid));
    const err = (() => {
      try {
        lockDataDir(dir);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DataDirInUseError);
    expect(err).toMatchObject({ code: 'DATA_DIR_IN_USE', name: 'DataDirInUseError', dataDir: dir, holderPid: process.pid });
    expect((err as Error).message).toContain(`data dir ${dir} is in use by process ${process.pid}`);
    lock.release();
    lock.release(); // idempotent
    expect(existsSync(join(dir, PID_FILE))).toBe(false);
    lockDataDir(dir).release();
  });

  it('is held by another process until that process is killed with SIGKILL; a stale pid file is not a lock', async () => {
    const dir = tempDir();
    // A holder the way lockDataDir holds it (the real binary's holder is tested in test/e2e/data-dir.test.ts).
    const script = `
      const Database = require('better-sqlite3');
      const db = new Database(${JSON.stringify(join(dir, LOCK_FILE))});
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); COMMIT;');
      require('node:fs').writeFileSync(${JSON.stringify(join(dir, PID_FILE))}, process.pid + '\\n');
      process.stdout.write('locked\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
        child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      expect(() => lockDataDir(dir)).toThrow(`in use by process ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // The child's pid file is still there (it never ran its clean-up): it does not matter.
    expect(readFileSync(join(dir, PID_FILE), 'utf8').trim()).toBe(String(child.pid));
    const lock = lockDataDir(dir);
    expect(readFileSync(join(dir, PID_FILE), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });

  it('a pid file naming a live process without the lock does not block', () => {
    const dir = tempDir();
    writeFileSync(join(dir, PID_FILE), `${process.ppid}\n`);
    const lock = lockDataDir(dir);
    lock.release();
  });
});
