import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestMode } from '@xenops/core';

const MODES: ReadonlySet<string> = new Set<GuestMode>(['normal', 'ignore', 'hang']);

/**
 * The simulated guests' answers to shutdown requests (API.md §8.2), by VM. They are the
 * simulator's own state, not the log's: kept in `<data-dir>/simulator/guest-modes.json` so that
 * they survive a restart of the agent, and rewritten whole (temporary file, fsync, rename) at each
 * change, which is rare. Without a data dir they live in memory only.
 */
export class GuestModes {
  private readonly modes = new Map<string, GuestMode>();
  /** Writes in order: each waits for the one before. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string | undefined) {}

  /** Loads the file of `dataDir` (absent: every guest is normal); an unreadable file is reported and ignored. */
  static async load(dataDir: string | undefined, logger: (line: string) => void): Promise<GuestModes> {
    const file = dataDir === undefined ? undefined : join(dataDir, 'simulator', 'guest-modes.json');
    const modes = new GuestModes(file);
    if (!file) return modes;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') logger(`simulator: cannot read ${file} (${(e as Error).message}); every guest answers normally`);
      return modes;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      for (const [vm, mode] of Object.entries(parsed as Record<string, unknown>)) {
        if (typeof mode === 'string' && MODES.has(mode)) modes.modes.set(vm, mode as GuestMode);
      }
    } catch (e) {
      logger(`simulator: ${file} is damaged (${(e as Error).message}); every guest answers normally`);
    }
    return modes;
  }

  get(vmId: string): GuestMode {
    return this.modes.get(vmId) ?? 'normal';
  }

  /** Sets a guest's mode (`normal` forgets it) and resolves once the change is durable. */
  set(vmId: string, mode: GuestMode): Promise<void> {
    if (this.get(vmId) === mode) return this.writing;
    if (mode === 'normal') this.modes.delete(vmId);
    else this.modes.set(vmId, mode);
    return this.save();
  }

  /** The VM is removed: its guest is forgotten (§8.2: a mode is kept until changed or the VM is removed). */
  forget(vmId: string): Promise<void> {
    return this.modes.has(vmId) ? this.set(vmId, 'normal') : this.writing;
  }

  /** Resolves once every change made so far is written. */
  flushed(): Promise<void> {
    return this.writing;
  }

  private save(): Promise<void> {
    const file = this.file;
    if (!file) return this.writing;
    // The content is taken when the write runs: one write covers every change queued before it.
    const next = this.writing.then(() => writeAtomically(file, JSON.stringify(Object.fromEntries(this.modes)) + '\n'));
    this.writing = next.catch(() => undefined);
    return next;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}
