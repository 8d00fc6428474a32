/**
 * `xenops backup` and `xenops restore` (issue 11): a consistent copy of a running service's store
 * in one checked file, and its restore onto a fresh service.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { BackupFileError, readBackupFile, type BackupFile } from '@xenops/core';
import type { HttpRoutes } from '../client/cli-transport.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { ByteProgress } from '../format/progress.js';
import { formatBytes } from '../format/units.js';
import { runXenopsd } from '../run-xenopsd.js';
import { str } from './common.js';

/** What `xenopsd --restore FILE --json` prints (its restore.ts), one JSON object a line. */
type RestoreLine =
  | { readonly progress: { readonly phase: 'checking' | 'restore'; readonly bytes: number; readonly total?: number } }
  | { readonly restored: RestoreOutcome }
  | { readonly error: RestoreFailure };

interface RestoreOutcome {
  readonly file: string;
  readonly mode: 'embedded' | 'nats';
  readonly prefix: string | null;
  readonly target: string;
  readonly first_seq: number;
  readonly head_seq: number;
  readonly start: string;
}

interface RestoreFailure {
  readonly name: string;
  readonly code?: string;
  readonly problem?: string;
  readonly unavailable?: true;
  readonly message: string;
}

/** A pause this long in the middle of a backup is taken for a dead service. */
const BACKUP_IDLE_TIMEOUT_MS = 120_000;

function httpOf(ctx: Context): HttpRoutes {
  const { http } = ctx.rpc().transport;
  if (!http) {
    throw new CliError('a backup is served over HTTP only: use --url or --socket instead of --nats', ExitCode.USAGE);
  }
  return http;
}

/** xenopsd's restore failure in the CLI's words and exit codes. */
function restoreFailure(e: RestoreFailure): CliError {
  switch (e.name) {
    case 'BackupFileError': {
      const hint = e.problem === 'missing' || e.problem === 'unsupported-version' ? '' : '; it cannot be restored: use another backup';
      return new CliError(`${e.message}${hint}`, e.problem === 'missing' ? ExitCode.NOT_FOUND : ExitCode.USAGE);
    }
    case 'DataDirInUseError':
      return new CliError(e.message, ExitCode.STATE);
    case 'RestoreError':
      return new CliError(e.message, e.code === 'TARGET_NOT_EMPTY' ? ExitCode.STATE : e.code === 'WRONG_MODE' ? ExitCode.USAGE : ExitCode.GENERIC);
    case 'ConfigError':
      return new CliError(e.message, ExitCode.USAGE);
    case 'NatsAuthenticationError':
      return new CliError(`${e.message}; check --nats-creds, --nats-nkey and --nats-tls-ca`, ExitCode.AUTH);
    case 'NatsUnreachableError':
      return new CliError(e.message, ExitCode.CONNECTION);
    default:
      return new CliError(e.message, e.unavailable && /cannot connect/.test(e.message) ? ExitCode.CONNECTION : ExitCode.GENERIC);
  }
}

function seqRange(first: number, head: number): string {
  return head < first ? 'an empty log' : `seqs ${first}..${head}`;
}

export const backup: Command = {
  name: 'backup',
  summary: "copy the running service's log (and snapshots) into one checked file",
  usage: 'backup FILE [--force]',
  description: [
    'Asks the running service for a consistent copy of its store and writes it to FILE: embedded,',
    "SQLite's online backup of the whole database; NATS, a JetStream snapshot of the event stream",
    'and the fold snapshot. The service keeps serving meanwhile; writes acknowledged after the copy',
    'began may or may not be in it. The file is written beside FILE first and only renamed to FILE',
    "once it has been read back and checked. Restore it with 'xenops restore'.",
  ].join('\n'),
  options: {
    force: { type: 'boolean', description: 'replace FILE if it exists' },
  },
  examples: [
    'xenops backup /var/backups/xenops-$(date +%F).xbk',
    'xenops --socket ~/.local/state/xenops-ts/xenopsd.sock backup /tmp/xenops.xbk',
    'xenops --url http://host-b:8440 --token-file ~/.xenops-token backup host-b.xbk --json',
  ],
  args: { min: 1, max: 1 },
  complete: ['file'],
  async run(ctx, [fileArg], values) {
    const file = resolve(fileArg!);
    if (existsSync(file) && values.force !== true) throw usageError(`${file} exists; choose another name, or pass --force to replace it`);
    const partial = resolve(dirname(file), `.${basename(file)}.partial`);
    const http = httpOf(ctx);
    let fd: number;
    try {
      fd = openSync(partial, 'w', 0o600);
    } catch (e) {
      throw usageError(`cannot write ${partial}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let written = 0;
    let total: number | undefined;
    let progress: ByteProgress | undefined;
    try {
      try {
        await http.download(
          '/backup',
          BACKUP_IDLE_TIMEOUT_MS,
          (headers) => {
            const payload = Number(headers['x-xenops-backup-payload-bytes']);
            total = Number.isFinite(payload) && payload > 0 ? payload : undefined;
            progress = new ByteProgress(ctx.io.stderr, 'backup', !ctx.json, total);
          },
          (chunk) => {
            let off = 0;
            try {
              while (off < chunk.length) off += writeSync(fd, chunk, off);
            } catch (e) {
              throw new CliError(`cannot write ${partial}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; nothing was written to ${file}`, ExitCode.GENERIC);
            }
            written += chunk.length;
            progress?.update(written);
          },
        );
        fsyncSync(fd);
      } finally {
        closeSync(fd);
        progress?.finish(written);
      }
      let checked: BackupFile;
      try {
        checked = await readBackupFile(partial);
      } catch (e) {
        if (e instanceof BackupFileError) throw new CliError(`the backup received from the service is not whole (${e.message}); nothing was written to ${file}`, ExitCode.GENERIC);
        throw e;
      }
      renameSync(partial, file);
      const dirFd = openSync(dirname(file), 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
      const h = checked.header;
      if (ctx.json) {
        ctx.printJson({ file, mode: h.mode, prefix: h.prefix, first_seq: h.first_seq, head_seq: h.head_seq, bytes: checked.bytes, created: h.created });
      } else {
        const what = h.mode === 'nats' ? `NATS stream of prefix ${h.prefix}` : 'embedded store';
        ctx.out(`Backed up the ${what}, ${seqRange(h.first_seq, h.head_seq)}, to ${file} (${formatBytes(checked.bytes)})`);
      }
    } catch (e) {
      rmSync(partial, { force: true });
      throw e;
    }
  },
};

export const restore: Command = {
  name: 'restore',
  summary: 'restore a backup onto a fresh service: an empty data dir, or a NATS prefix not in use',
  usage: ['restore FILE --data-dir DIR', 'restore FILE --nats URL [--nats-prefix NAME]'],
  description: [
    'Checks FILE from end to end, then writes what it holds into a new store; start xenopsd on it',
    'afterwards. Nothing is ever overwritten:',
    '  embedded  --data-dir DIR must be empty or absent (the service need not, and must not, run);',
    "  NATS      the backup's stream must not exist on the server at URL. JetStream restores a",
    '            stream under its own name, so the prefix is the one the backup was taken from',
    '            (--nats-prefix, if given, must match it).',
    'The restore itself is done by xenopsd --restore (the one installed with xenops, else the',
    'one on PATH): the stores belong to the service.',
  ].join('\n'),
  options: {
    'data-dir': { type: 'string', value: 'DIR', description: 'embedded: the (new or empty) data dir to restore into' },
    'nats-prefix': { type: 'string', value: 'NAME', description: "NATS: the prefix to restore as (default: the backup's)" },
    'nats-creds': { type: 'string', value: 'FILE', description: 'NATS credentials file' },
    'nats-nkey': { type: 'string', value: 'FILE', description: 'NATS nkey seed file' },
    'nats-tls-ca': { type: 'string', value: 'FILE', description: 'CA certificate for a TLS NATS server' },
  },
  examples: [
    'xenops restore /var/backups/xenops-2026-12-01.xbk --data-dir /var/lib/xenops-restored && xenopsd --data-dir /var/lib/xenops-restored',
    'xenops restore prod.xbk --nats nats://nats-b:4222 && xenopsd --nats nats://nats-b:4222   # a fresh NATS server',
    'xenops restore prod.xbk --nats nats://nats-b:4222 --nats-prefix prod --nats-creds admin.creds --json',
  ],
  args: { min: 1, max: 1 },
  complete: ['file'],
  async run(ctx, [fileArg], values) {
    const dataDir = str(values['data-dir']);
    const nats = ctx.connect.nats;
    if (dataDir !== undefined && nats !== undefined) throw usageError('give either --data-dir DIR (embedded) or --nats URL (NATS), not both');
    if (dataDir === undefined && nats === undefined) throw usageError('restore needs a target: --data-dir DIR for an embedded store, or --nats URL for NATS');
    const file = resolve(fileArg!);
    const flag = (name: string): string[] => (str(values[name]) !== undefined ? [`--${name}`, str(values[name])!] : []);
    // The daemon's package restores (the CLI loads no store adapter): progress and outcome come
    // back as JSON lines; the CLI draws and words them.
    const args = [
      '--restore',
      file,
      '--json',
      ...(dataDir !== undefined ? ['--data-dir', resolve(dataDir)] : ['--nats', nats!, ...flag('nats-prefix')]),
      ...flag('nats-creds'),
      ...flag('nats-nkey'),
      ...flag('nats-tls-ca'),
    ];
    // Each bar starts with its phase in xenopsd (not with xenopsd's own start): a quick phase
    // stays quiet off a terminal.
    let check: ByteProgress | undefined;
    let progress: ByteProgress | undefined;
    let written = 0;
    let outcome: RestoreOutcome | undefined;
    let failure: RestoreFailure | undefined;
    const status = await runXenopsd(args, (text) => {
      let line: RestoreLine;
      try {
        line = JSON.parse(text) as RestoreLine;
      } catch {
        return; // not ours (a warning of the runtime, say)
      }
      if ('progress' in line) {
        if (line.progress.phase === 'checking') {
          check ??= new ByteProgress(ctx.io.stderr, 'checking', !ctx.json, line.progress.total);
          check.update(line.progress.bytes);
        } else {
          if (!progress) {
            check?.finish(0);
            progress = new ByteProgress(ctx.io.stderr, 'restore', !ctx.json, line.progress.total);
          }
          written = line.progress.bytes;
          progress.update(written);
        }
      } else if ('restored' in line) outcome = line.restored;
      else if ('error' in line) failure = line.error;
    }).finally(() => {
      if (progress) progress.finish(written);
      else check?.finish(0);
    });
    if (failure) throw restoreFailure(failure);
    if (!outcome) throw new CliError(`xenopsd --restore ended with status ${status} and no outcome`, ExitCode.GENERIC);
    if (ctx.json) {
      const { file: f, mode, prefix, target, first_seq, head_seq, start } = outcome;
      ctx.printJson({ file: f, mode, prefix, target, first_seq, head_seq, start });
    } else {
      ctx.out(`Restored ${seqRange(outcome.first_seq, outcome.head_seq)} from ${file} into ${outcome.target}`);
      ctx.out(`Start the service on it with: ${outcome.start}`);
    }
  },
};
