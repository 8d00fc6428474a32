import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeEvent, readMessage, traceparentOfDbg, type DamagedMessage, type EventLog, type LogEvent } from '@xenops/core';

/** One audit entry as `GET /log` serves it (one JSON object per line). */
export interface AuditEntry {
  readonly seq: number;
  readonly stream: string;
  readonly time: string;
  readonly host: string;
  readonly actor: string;
  readonly dbg: string;
  /** The W3C trace context the call's debug string carries (its last line), if any. */
  readonly traceparent?: string;
  readonly event: string;
  readonly vm?: string;
  /** The VM's name when the event was logged (see logRoute). */
  readonly vm_name?: string;
  readonly task?: string;
  readonly text: string;
}

export function auditEntry(stream: string, e: LogEvent): AuditEntry {
  const body = e.body as { vmId?: string; taskId?: string };
  const traceparent = traceparentOfDbg(e.audit.dbg);
  const vm = body.vmId ?? (stream.startsWith('vm/') ? stream.slice(3) : undefined);
  const task = e.body.type === 'TaskCreated' ? String(e.seq) : body.taskId;
  return {
    seq: e.seq,
    stream,
    time: new Date(e.audit.timeMs).toISOString(),
    host: e.audit.host,
    actor: e.audit.actor,
    dbg: e.audit.dbg,
    ...(traceparent ? { traceparent } : {}),
    event: e.body.type,
    ...(vm ? { vm } : {}),
    ...(task ? { task } : {}),
    text: describeEvent(e.body, e.seq),
  };
}

/** The entry of a message that cannot be read: in its place in the history, saying so. */
export function damagedEntry(d: DamagedMessage): AuditEntry {
  return {
    seq: d.seq,
    stream: d.stream,
    time: '',
    host: '',
    actor: '',
    dbg: '',
    event: 'Damaged',
    ...(d.vm !== undefined ? { vm: d.vm } : {}),
    ...(d.task !== undefined ? { task: d.task } : {}),
    text: `damaged message of ${d.stream}, cannot be read: ${d.error} (see xenops verify)`,
  };
}

function parseFilter(url: URL): { since: number; vm?: string; task?: string; limit: number } | string {
  const since = url.searchParams.get('since') ?? '0';
  if (!/^\d+$/.test(since)) return `since must be a log sequence number, got ${JSON.stringify(since)}`;
  const limitText = url.searchParams.get('limit') ?? '0';
  if (!/^\d+$/.test(limitText)) return `limit must be a whole number, got ${JSON.stringify(limitText)}`;
  const vm = url.searchParams.get('vm') ?? undefined;
  const task = url.searchParams.get('task') ?? undefined;
  return { since: Number(since), limit: Number(limitText), ...(vm ? { vm } : {}), ...(task ? { task } : {}) };
}

/**
 * `GET /log?since=SEQ&vm=ID&task=ID&limit=N`: the audit history (API.md §9.5) as JSON lines, oldest
 * first, every event with seq > since. Served from the log itself, so it works in both modes and
 * while the embedded store is locked by this process.
 *
 * Each entry of a VM carries the VM's name (`vm_name`) as the events read so far say (VmAdded
 * carries the configuration); a VM added before `since` has the name `currentName` gives (the
 * read model's), which is the one it had then unless it was re-added under another name since.
 */
export function logRoute(log: EventLog, currentName: (vmId: string) => string | undefined = () => undefined) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const filter = parseFilter(new URL(req.url ?? '/', 'http://localhost'));
    if (typeof filter === 'string') {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: filter }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let sent = 0;
    const names = new Map<string, string>();
    const named = (entry: AuditEntry): AuditEntry => {
      const name = entry.vm !== undefined ? (names.get(entry.vm) ?? currentName(entry.vm)) : undefined;
      return name ? { ...entry, vm_name: name } : entry;
    };
    for await (const m of log.read(filter.since)) {
      const read = readMessage(m);
      for (const e of read.events ?? []) if (e.body.type === 'VmAdded') names.set(e.body.vmId, e.body.config.name);
      const entries = read.damage ? [damagedEntry(read.damage)] : read.events.map((e) => named(auditEntry(m.stream, e)));
      for (const entry of entries) {
        if (filter.vm && entry.vm !== filter.vm) continue;
        if (filter.task && entry.task !== filter.task) continue;
        if (!res.write(JSON.stringify(entry) + '\n')) await new Promise((r) => res.once('drain', r));
        if (filter.limit && ++sent >= filter.limit) {
          res.end();
          return;
        }
      }
      if (res.destroyed) return;
    }
    res.end();
  };
}
