/**
 * Runs the `xenopsd` of this installation for what only the daemon's package may do (it loads the
 * store adapters, which the CLI never imports): today `xenopsd --restore`. The binary is the
 * `@xenops/xenopsd` installed with this CLI, else `xenopsd` on PATH.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { CliError, ExitCode } from './errors.js';

/** How to start xenopsd: node and the bin of the `@xenops/xenopsd` next to us, else `xenopsd` from PATH. */
export function xenopsdCommand(resolvePackage: (id: string) => string = createRequire(import.meta.url).resolve): { command: string; args: string[] } {
  try {
    const manifest = resolvePackage('@xenops/xenopsd/package.json');
    const bin = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: { xenopsd?: string } }).bin?.xenopsd;
    if (bin && existsSync(join(dirname(manifest), bin))) return { command: process.execPath, args: [join(dirname(manifest), bin)] };
  } catch {
    // not installed with this CLI: try PATH
  }
  return { command: 'xenopsd', args: [] };
}

/**
 * Runs xenopsd with `args`, handing each line of its stdout to `onLine` as it comes; its stderr is
 * ours. Resolves with its exit status.
 */
export function runXenopsd(args: readonly string[], onLine: (line: string) => void, command = xenopsdCommand()): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.command, [...command.args, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', onLine);
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'ENOENT'
          ? new CliError(`cannot find xenopsd: it is neither installed with this xenops (@xenops/xenopsd) nor on PATH; install it to restore`, ExitCode.GENERIC)
          : new CliError(`cannot run xenopsd: ${e.message}`, ExitCode.GENERIC),
      );
    });
    // 'close', not 'exit': every line of its stdout has been read by then.
    child.once('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? ExitCode.INTERRUPTED : ExitCode.GENERIC)));
  });
}
