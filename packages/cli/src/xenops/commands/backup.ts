/**
 * `xenops backup` and `xenops restore` (issue 11): a consistent copy of a running service's store
 * in one checked file, and its restore onto a fresh service.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import {
  BackupFileError,
  DataDirInUseError,
  readBackupFile,
  restoreEmbeddedBackup,
  restoreNatsBackup,
  RestoreError,
  StoreUnavailableError,
  type BackupFile,
  type RestoreSummary,
} from '@xenops/core';
import { HttpTransport } from '../client/http.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { ByteProgress } from '../format/progress.js';
import { formatBytes } from '../format/units.js';
import { str } from './common.js';

/** A pause this long in the middle of a backup is taken for a dead service. */
const BACKUP_IDLE_TIMEOUT_MS = 120_000;

function httpOf(ctx: Context): HttpTransport {
  const transport = ctx.rpc().transport;
  if (!(transport instanceof HttpTransport)) {
    throw new CliError('a backup is served over HTTP only: use --url or --socket instead of --nats', ExitCode.USAGE);
  }
  return transport;
}

function backupFileError(e: BackupFileError): CliError {
  const hint = e.problem === 'missing' ? '' : e.problem === 'unsupported-version' ? '' : '; it cannot be restored: use another backup';
  return new CliError(`${e.message}${hint}`, e.problem === 'missing' ? ExitCode.NOT_FOUND : ExitCode.USAGE);
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

    let checked: BackupFile;
    const check = new ByteProgress(ctx.io.stderr, 'checking', !ctx.json, existsSync(file) ? statSync(file).size : undefined);
    try {
      checked = await readBackupFile(file, (n) => check.update(n));
    } catch (e) {
      if (e instanceof BackupFileError) throw backupFileError(e);
      throw e;
    } finally {
      check.finish(0);
    }
    const h = checked.header;
    if (h.mode === 'nats' && dataDir !== undefined) {
      throw usageError(`${file} is a backup of the NATS stream of prefix ${h.prefix}, not of an embedded store: restore it with --nats URL`);
    }
    if (h.mode === 'embedded' && nats !== undefined) {
      throw usageError(`${file} is a backup of an embedded store, not of a NATS stream: restore it with --data-dir DIR`);
    }

    const progress = new ByteProgress(ctx.io.stderr, 'restore', !ctx.json, checked.payloadBytes);
    let summary: RestoreSummary;
    let written = 0;
    const onBytes = (n: number) => {
      written = n;
      progress.update(n);
    };
    try {
      summary =
        dataDir !== undefined
          ? await restoreEmbeddedBackup(checked, resolve(dataDir), onBytes)
          : await restoreNatsBackup(
              checked,
              {
                servers: nats!,
                ...(str(values['nats-prefix']) !== undefined ? { prefix: str(values['nats-prefix'])! } : {}),
                ...(str(values['nats-creds']) !== undefined ? { credsFile: str(values['nats-creds'])! } : {}),
                ...(str(values['nats-nkey']) !== undefined ? { nkeyFile: str(values['nats-nkey'])! } : {}),
                ...(str(values['nats-tls-ca']) !== undefined ? { tlsCaFile: str(values['nats-tls-ca'])! } : {}),
              },
              onBytes,
            );
    } catch (e) {
      if (e instanceof BackupFileError) throw backupFileError(e);
      if (e instanceof DataDirInUseError) throw new CliError(e.message, ExitCode.STATE);
      if (e instanceof RestoreError) throw new CliError(e.message, e.code === 'TARGET_NOT_EMPTY' ? ExitCode.STATE : e.code === 'WRONG_MODE' ? ExitCode.USAGE : ExitCode.GENERIC);
      if (e instanceof StoreUnavailableError) throw new CliError(e.message, /cannot connect/.test(e.message) ? ExitCode.CONNECTION : ExitCode.GENERIC);
      throw e;
    } finally {
      progress.finish(written);
    }
    const start =
      h.mode === 'embedded' ? `xenopsd --data-dir ${resolve(dataDir!)}` : `xenopsd --nats ${nats} --nats-prefix ${h.prefix}`;
    if (ctx.json) {
      ctx.printJson({ file, mode: h.mode, prefix: h.prefix, target: summary.target, first_seq: summary.first_seq, head_seq: summary.head_seq, start });
    } else {
      ctx.out(`Restored ${seqRange(summary.first_seq, summary.head_seq)} from ${file} into ${summary.target}`);
      ctx.out(`Start the service on it with: ${start}`);
    }
  },
};
