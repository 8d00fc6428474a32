/**
 * The data dir is safe (issue 11 item 7), with the real binary: a second xenopsd on the same data
 * dir refuses to start in both modes (one line naming the dir and the holder's pid, exit status 75)
 * and leaves the first one serving; after `kill -9` of the holder a new one starts without any
 * clean-up; a damaged, truncated or foreign `xenops.db` is refused with one line naming the file
 * (exit status 65) and is left byte for byte as it was.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { X } from '../support/rpc.js';
import { xenopsdVm } from '../support/vms.js';
import { cleanupAll, makeTempDir, NATS_URL, runXenopsdToExit, spawnXenopsd, uniquePrefix, trackNatsPrefix } from '../support/xenopsd.js';

afterAll(cleanupAll);

const EXIT_DATA_DIR_IN_USE = 75;
const EXIT_STORE_CORRUPT = 65;

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The `cannot start:` lines of a failed start (there must be exactly one). */
function startFailures(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.includes('cannot start:'));
}

async function secondStart(dataDir: string, extra: string[] = []) {
  return runXenopsdToExit(['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--host-id', 'second', ...extra]);
}

describe.concurrent('one xenopsd per data dir', () => {
  it('embedded: a second process is refused with the holder named, the first keeps serving, and kill -9 frees the dir', async () => {
    const first = await spawnXenopsd({ mode: 'embedded' });
    const c = first.client();
    await c.ok('VM.add', X({ vm: xenopsdVm('before') }));

    const second = await secondStart(first.dataDir);
    expect(second.code).toBe(EXIT_DATA_DIR_IN_USE);
    const lines = startFailures(second.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`data dir ${first.dataDir} is in use by process ${first.pid}`);

    // The first one is unharmed: it still reads and writes.
    await c.ok('VM.add', X({ vm: xenopsdVm('after') }));
    expect((await c.ok<[Record<string, unknown>, unknown][]>('VM.list', X())).map(([v]) => v.id).sort()).toEqual(['after', 'before']);

    await first.kill9();
    const third = await spawnXenopsd({ mode: 'embedded', dataDir: first.dataDir });
    expect((await third.client().ok<[Record<string, unknown>, unknown][]>('VM.list', X())).map(([v]) => v.id).sort()).toEqual(['after', 'before']);
    await third.stop();
  });

  it('nats: a second gateway on the same data dir is refused (whatever its prefix), and kill -9 frees the dir', async () => {
    const first = await spawnXenopsd({ mode: 'nats' });
    const otherPrefix = uniquePrefix();
    trackNatsPrefix(otherPrefix);
    const second = await secondStart(first.dataDir, ['--nats', NATS_URL, '--nats-prefix', otherPrefix]);
    expect(second.code).toBe(EXIT_DATA_DIR_IN_USE);
    const lines = startFailures(second.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`data dir ${first.dataDir} is in use by process ${first.pid}`);
    expect((await first.client().ok('Query.query', X())) as object).toMatchObject({ name: 'xenops' });

    // An agent keeps nothing in the data dir and takes no lock: gateway and agent may share one.
    const agent = await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: first.natsPrefix, dataDir: first.dataDir, hostId: 'agent-b', extraArgs: ['--socket', 'off'] });
    await agent.stop();

    await first.kill9();
    // No clean-up by hand: the kernel dropped the lock with the process (the pid file is stale).
    const again = await spawnXenopsd({ mode: 'nats', dataDir: first.dataDir, natsPrefix: otherPrefix });
    expect((await again.client().ok('Query.query', X())) as object).toMatchObject({ name: 'xenops' });
    await again.stop();
  });
});

describe('a damaged xenops.db is refused, named and left untouched', () => {
  /** A real store with some history, stopped cleanly. */
  let pristine: string;
  async function realStore(): Promise<string> {
    if (pristine) return pristine;
    const x = await spawnXenopsd({ mode: 'embedded' });
    const c = x.client();
    for (let i = 0; i < 20; i++) await c.ok('VM.add', X({ vm: xenopsdVm(`vm-${i}`) }));
    expect(await x.stop()).toBe(0);
    pristine = path.join(x.dataDir, 'xenops.db');
    return pristine;
  }

  async function damaged(name: string, damage: (file: string) => void): Promise<{ dir: string; file: string }> {
    const dir = await makeTempDir(`xcorrupt-${name}`);
    const file = path.join(dir, 'xenops.db');
    copyFileSync(await realStore(), file);
    damage(file);
    return { dir, file };
  }

  async function expectRefused(dir: string, file: string, reason: RegExp): Promise<void> {
    const before = sha256(file);
    const filesBefore = readdirSync(dir).sort();
    const r = await runXenopsdToExit(['--data-dir', dir, '--listen', '127.0.0.1:0']);
    expect(r.code, r.stderr).toBe(EXIT_STORE_CORRUPT);
    const lines = startFailures(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain(`the embedded store ${file} `);
    expect(lines[0]).toMatch(reason);
    expect(lines[0]).toContain('restore it from a backup');
    expect(sha256(file)).toBe(before);
    // Nothing was created beside it but the data dir's lock and pid files.
    expect(readdirSync(dir).filter((f) => !['xenopsd.lock', 'xenops.pid'].includes(f)).sort()).toEqual(filesBefore);
  }

  it('garbage over the header', async () => {
    const { dir, file } = await damaged('header', (f) => {
      const b = readFileSync(f);
      b.fill(0x5a, 0, 100);
      writeFileSync(f, b);
    });
    await expectRefused(dir, file, /is not a SQLite database/);
  });

  it('a truncated file', async () => {
    const { dir, file } = await damaged('trunc', (f) => truncateSync(f, Math.floor(readFileSync(f).length / 2)));
    await expectRefused(dir, file, /is truncated/);
  });

  it('a file cut to nothing', async () => {
    const { dir, file } = await damaged('empty', (f) => truncateSync(f, 0));
    await expectRefused(dir, file, /is empty \(0 bytes\)/);
  });

  it('a valid SQLite database that is not ours', async () => {
    const dir = await makeTempDir('xcorrupt-foreign');
    const file = path.join(dir, 'xenops.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT); INSERT INTO accounts (owner) VALUES ('someone else');`);
    db.close();
    await expectRefused(dir, file, /is a SQLite database but not a xenops store \(it has no "events" table\)/);
  });

  it('a xenops store of a newer schema version', async () => {
    const { dir, file } = await damaged('newer', (f) => {
      const db = new Database(f);
      db.prepare(`UPDATE meta SET value = '99' WHERE key = 'schema_version'`).run();
      db.close();
    });
    await expectRefused(dir, file, /has schema version 99, newer than this program's \(1\)/);
  });

  it('the intact copy still starts (the damage, not the copying, is what is refused)', async () => {
    const { dir } = await damaged('intact', () => {});
    const x = await spawnXenopsd({ mode: 'embedded', dataDir: dir });
    expect(await x.client().ok<unknown[]>('VM.list', X())).toHaveLength(20);
    await x.stop();
  });
});
