/**
 * `xenops log` and `xenops verify`: the audit history (API.md §9.5) and a full replay check,
 * served by the gateway's `GET /log` and `GET /verify`.
 */
import type { HttpRoutes } from '../client/cli-transport.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { resolveVm } from '../resolve.js';

interface AuditEntry {
  seq: number;
  time: string;
  dbg: string;
  actor: string;
  host: string;
  event: string;
  vm?: string;
  /** The VM's name when the event was logged (gateways since issue 12). */
  vm_name?: string;
  task?: string;
  text: string;
}

function httpOf(ctx: Context, what: string): HttpRoutes {
  const { http } = ctx.rpc().transport;
  if (!http) {
    throw new CliError(`${what} is served over HTTP only: use --url or --socket instead of --nats`, ExitCode.USAGE);
  }
  return http;
}

/** `--since` is a seq, or a time (ISO 8601, or HH:MM[:SS] today). */
function parseSince(text: string | undefined): { seq: number; time?: number } {
  if (text === undefined) return { seq: 0 };
  if (/^\d+$/.test(text)) return { seq: Number(text) };
  const today = /^\d{1,2}:\d{2}(:\d{2})?$/.test(text) ? `${new Date().toISOString().slice(0, 10)}T${text}` : text;
  const time = Date.parse(today);
  if (Number.isNaN(time)) throw usageError(`--since expects a log sequence number or a time (2026-11-27T12:00:00Z, 12:00), got ${JSON.stringify(text)}`);
  return { seq: 0, time };
}

function formatEntry(e: AuditEntry): string {
  // A damaged message has no time: nothing of it can be read.
  const clock = e.time ? e.time.slice(11, 19) : '--:--:--';
  const who = e.dbg ? ` by dbg=${e.dbg.split('\n')[0]}` : '';
  // Names first, as a reader looks for them; the text keeps the uuid.
  const vm = e.vm_name ? `${e.vm_name}: ` : '';
  return `${clock} seq ${e.seq} ${vm}${e.text}${who}`;
}

export const log: Command = {
  name: 'log',
  summary: 'print the audit history (who did what, when), filterable by VM, task and seq or time',
  usage: 'log [--vm VM] [--task ID] [--since SEQ|TIME] [--until SEQ] [--follow]',
  options: {
    vm: { type: 'string', value: 'VM', description: 'only events of this VM and its devices' },
    task: { type: 'string', value: 'ID', description: 'only events of this task' },
    since: { type: 'string', value: 'SEQ|TIME', description: 'after this log sequence number, or from this time' },
    until: { type: 'string', value: 'SEQ', description: 'up to this log sequence number' },
    follow: { type: 'boolean', short: 'f', description: 'keep printing new events as they are logged (Ctrl-C stops)' },
  },
  examples: ['xenops log --vm web01', 'xenops log --since 100 --until 200 --json', 'xenops log --since 12:00 --follow'],
  args: { min: 0, max: 0 },
  async run(ctx, _args, values) {
    const http = httpOf(ctx, 'the audit history');
    const since = parseSince(values.since as string | undefined);
    const until = values.until === undefined ? undefined : Number(values.until);
    if (until !== undefined && !Number.isSafeInteger(until)) throw usageError(`--until expects a log sequence number, got ${JSON.stringify(values.until)}`);
    const vm = values.vm ? (await resolveVm(ctx, values.vm as string).catch(() => ({ id: values.vm as string }))).id : undefined;
    const query = (after: number) =>
      `/log?since=${after}${vm ? `&vm=${encodeURIComponent(vm)}` : ''}${values.task ? `&task=${encodeURIComponent(values.task as string)}` : ''}`;
    let after = since.seq;
    for (;;) {
      const text = await http.get(query(after), 600_000);
      for (const line of text.split('\n')) {
        if (!line) continue;
        const e = JSON.parse(line) as AuditEntry;
        after = Math.max(after, e.seq);
        if (until !== undefined && e.seq > until) return;
        if (since.time !== undefined && Date.parse(e.time) < since.time) continue;
        ctx.out(ctx.json ? JSON.stringify(e) : formatEntry(e));
      }
      if (!values.follow) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  },
};

interface VerifyReport {
  ok: boolean;
  seq: number;
  events: number;
  vms: number;
  tasks: number;
  seconds: number;
  eventsPerSecond: number;
  differences: string[];
  /** Absent from gateways older than damage reporting. */
  damaged?: DamagedMessage[];
  quarantinedVms?: string[];
  /** Absent from gateways older than the invariant monitor. */
  invariantViolations?: InvariantViolation[];
}

interface InvariantViolation {
  seq: number;
  vmId: string;
  rule: string;
  detail: string;
}

interface DamagedMessage {
  seq: number;
  stream: string;
  vm?: string;
  task?: string;
  host?: string;
  error: string;
}

function describeDamage(d: DamagedMessage): string {
  const owner = d.vm !== undefined ? `VM ${d.vm}` : d.task !== undefined ? `task ${d.task}` : d.host !== undefined ? `host ${d.host}` : d.stream;
  const effect = d.vm !== undefined ? ' (the VM is quarantined: its commands are refused)' : '';
  return `seq ${d.seq} of ${owner} (stream ${d.stream}) cannot be read: ${d.error}${effect}`;
}

export const verify: Command = {
  name: 'verify',
  summary: 'replay the whole log from scratch and check it against the live read model',
  usage: 'verify',
  examples: ['xenops verify', 'xenops verify --json'],
  args: { min: 0, max: 0 },
  async run(ctx) {
    const report = JSON.parse(await httpOf(ctx, 'log verification').get('/verify', 600_000)) as VerifyReport;
    const damaged = report.damaged ?? [];
    const quarantined = report.quarantinedVms ?? [];
    const violations = report.invariantViolations ?? [];
    const problems = [
      ...(violations.length ? [`${violations.length} invariant violation(s) (a VM with two domains or on two hosts)`] : []),
      ...(damaged.length ? [`${damaged.length} damaged message(s) in the log${quarantined.length ? ` (quarantined VM(s): ${quarantined.join(', ')})` : ''}`] : []),
      ...(report.differences.length ? [`${report.differences.length} difference(s) between the log and the read model`] : []),
    ].join(' and ');
    if (ctx.json) ctx.printJson(report);
    else {
      ctx.out(
        `replayed ${report.events} events up to seq ${report.seq} in ${report.seconds.toFixed(2)} s (${report.eventsPerSecond} events/s): ` +
          `${report.vms} VM(s), ${report.tasks} task(s)`,
      );
      for (const d of damaged) ctx.out(`  damaged: ${describeDamage(d)}`);
      for (const d of report.differences) ctx.out(`  difference: ${d}`);
      for (const v of violations) ctx.out(`  invariant ${v.rule}: seq ${v.seq}, VM ${v.vmId}: ${v.detail}`);
      ctx.out(report.ok ? 'ok: the read model is exactly the replay of the log, and no VM ever had two domains or two hosts' : `FAILED: ${problems}`);
    }
    if (!report.ok) throw new CliError(`verify found ${problems}`, ExitCode.GENERIC);
  },
};
