/**
 * `xenopsd --restore FILE` (issue 11's restore, moved here in issue 12 so that the `xenops` CLI
 * loads no store adapter): checks a backup from end to end, then writes it into a new store, an
 * empty data dir or a NATS server where the backup's prefix is free. Nothing is ever overwritten.
 *
 * `xenops restore` runs this with `--json`: progress and the outcome are then JSON lines on
 * stdout ({@link RestoreLine}) and nothing is written on stderr, so that the CLI draws the
 * progress and reports failures in its own words and exit codes.
 */
import { existsSync, statSync } from 'node:fs';
import { BackupFileError, readBackupFile, RestoreError, StoreUnavailableError, type BackupFile, type RestoreSummary } from '@xenops/core';
import { restoreNatsBackup } from '@xenops/store-nats';
import { restoreEmbeddedBackup } from '@xenops/store-sqlite';
import type { RestoreAction } from './config.js';

export type RestorePhase = 'checking' | 'restore';

/** What `xenopsd --restore FILE --json` prints, one JSON object a line. */
export type RestoreLine =
  | { readonly progress: { readonly phase: RestorePhase; readonly bytes: number; readonly total?: number } }
  | { readonly restored: RestoreOutcome }
  | { readonly error: RestoreFailure };

export interface RestoreOutcome {
  readonly file: string;
  readonly mode: 'embedded' | 'nats';
  readonly prefix: string | null;
  readonly target: string;
  readonly first_seq: number;
  readonly head_seq: number;
  /** The command that starts a service on the restored store. */
  readonly start: string;
}

export interface RestoreFailure {
  /** The error's class: BackupFileError, RestoreError, DataDirInUseError, NatsAuthenticationError... */
  readonly name: string;
  readonly code?: string;
  /** BackupFileError: what is wrong with the file (`missing`, `truncated`, ...). */
  readonly problem?: string;
  /** The store could not be reached or used (a StoreUnavailableError). */
  readonly unavailable?: true;
  readonly message: string;
}

/** Throttles progress reports: at most one every `everyMs`, the first after `afterMs`. */
function throttled(report: (bytes: number) => void, everyMs: number, afterMs: number): (bytes: number) => void {
  const started = Date.now();
  let last = Number.NEGATIVE_INFINITY;
  return (bytes) => {
    const now = Date.now();
    if (now - started < afterMs || now - last < everyMs) return;
    last = now;
    report(bytes);
  };
}

const mib = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/**
 * Runs the restore; throws what stopped it (typed: BackupFileError, RestoreError, the stores'
 * errors). `print` gets stdout's text, `log` the progress lines of the human form.
 */
export async function runRestore(action: RestoreAction, print: (text: string) => void, log: (line: string) => void): Promise<void> {
  const emit = (line: RestoreLine) => print(`${JSON.stringify(line)}\n`);
  const progress = (phase: RestorePhase, total: number | undefined) =>
    action.json
      ? throttled((bytes) => emit({ progress: { phase, bytes, ...(total !== undefined ? { total } : {}) } }), 100, 0)
      : throttled((bytes) => log(`restore: ${phase === 'checking' ? 'checked' : 'wrote'} ${mib(bytes)}${total ? ` of ${mib(total)}` : ''}`), 5000, 1000);
  const { file } = action;

  const size = existsSync(file) ? statSync(file).size : undefined;
  const checked: BackupFile = await readBackupFile(file, progress('checking', size));
  const h = checked.header;
  if (h.mode === 'nats' && action.dataDir !== undefined) {
    throw new RestoreError('WRONG_MODE', `${file} is a backup of the NATS stream of prefix ${h.prefix}, not of an embedded store: restore it with --nats URL`);
  }
  if (h.mode === 'embedded' && action.nats !== undefined) {
    throw new RestoreError('WRONG_MODE', `${file} is a backup of an embedded store, not of a NATS stream: restore it with --data-dir DIR`);
  }

  if (action.json) emit({ progress: { phase: 'restore', bytes: 0, total: checked.payloadBytes } });
  const onBytes = progress('restore', checked.payloadBytes);
  const summary: RestoreSummary =
    action.dataDir !== undefined
      ? await restoreEmbeddedBackup(checked, action.dataDir, onBytes)
      : await restoreNatsBackup(checked, { ...action.nats!, name: 'xenopsd restore' }, onBytes);
  const start = h.mode === 'embedded' ? `xenopsd --data-dir ${action.dataDir}` : `xenopsd --nats ${action.nats!.servers} --nats-prefix ${h.prefix}`;
  const outcome: RestoreOutcome = { file, mode: h.mode, prefix: h.prefix, target: summary.target, first_seq: summary.first_seq, head_seq: summary.head_seq, start };
  if (action.json) emit({ restored: outcome });
  else print(`Restored ${seqRange(outcome.first_seq, outcome.head_seq)} from ${file} into ${outcome.target}\nStart the service on it with: ${start}\n`);
}

export function seqRange(first: number, head: number): string {
  return head < first ? 'an empty log' : `seqs ${first}..${head}`;
}

/** The failure as `--json` reports it. */
export function restoreFailureOf(e: unknown): RestoreFailure {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const code = (e as { code?: unknown }).code;
  return {
    name: e.name,
    ...(typeof code === 'string' ? { code } : {}),
    ...(e instanceof BackupFileError ? { problem: e.problem } : {}),
    ...(e instanceof StoreUnavailableError ? { unavailable: true as const } : {}),
    message: e.message,
  };
}
