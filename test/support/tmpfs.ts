/**
 * A small tmpfs to run out of space on purpose (the disk-full tests). Mounting needs root (or
 * CAP_SYS_ADMIN), which the tests have here and in CI; when it is impossible the test fails with
 * the reason, it is never skipped.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './xenopsd.js';

const run = promisify(execFile);

export interface Tmpfs {
  readonly dir: string;
  /** Writes a filler file until the file system is full to the last byte; returns its path. */
  fill(): string;
  /** Removes the filler: the space is back. */
  free(): void;
  unmount(): Promise<void>;
}

const mounted = new Set<string>();
process.on('exit', () => {
  for (const dir of mounted) {
    try {
      // Lazy: a process that still has a file open there must not keep the mount alive.
      execFileSync('umount', ['-l', dir]);
    } catch {
      /* best effort */
    }
  }
});

export async function mountTmpfs(sizeBytes: number, tag = 'xtmpfs'): Promise<Tmpfs> {
  const dir = await makeTempDir(tag);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir]);
  } catch (e) {
    throw new Error(
      `cannot mount a ${sizeBytes}-byte tmpfs on ${dir} (${(e as Error).message.trim()}): the disk-full tests need root or ` +
        `CAP_SYS_ADMIN to make a small file system they can fill; they are never skipped`,
    );
  }
  mounted.add(dir);
  const filler = path.join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      try {
        // Big writes first, then ever smaller ones, until not one more byte fits.
        for (const size of [1 << 20, 1 << 16, 4096, 512, 1]) {
          const chunk = Buffer.alloc(size, 0x46);
          for (;;) {
            try {
              writeSync(fd, chunk);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw e;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return filler;
    },
    free() {
      rmSync(filler, { force: true });
    },
    async unmount() {
      if (!mounted.delete(dir)) return;
      await run('umount', ['-l', dir]);
    },
  };
}
