/**
 * `GET /events` (API.md §2.8, §9.4): the change records as Server-Sent Events.
 *
 * Resume (`Last-Event-ID` header, else `?since=`): the records with a greater seq are replayed
 * from the log, then the stream continues live. The live subscription is taken first, at the
 * projection's seq H; the replay covers `(since, H]` and the live records all have seq > H, so the
 * two join without a gap or a duplicate.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventLog, SnapshotStore } from '@xenops/core';
import type { RouteHandler } from '../http/server.js';
import { DEFAULT_LIMITS, type LimitUsage } from '../limits/limits.js';
import { replayRecords, type ChangeFeed } from './change-feed.js';
import { CHANGE_KINDS, type ChangeKind, type ChangeRecord } from './records.js';

export const SSE_RETRY_MS = 2000;
export const SSE_PING_MS = 15_000;
/** A client this far behind is dropped (it can resume with Last-Event-ID). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** Seconds a client refused for the client limit is asked to wait before trying again. */
export const SSE_FULL_RETRY_AFTER_S = 5;

interface Filter {
  readonly kinds?: ReadonlySet<string>;
  readonly vms?: ReadonlySet<string>;
}

function matches(f: Filter, r: ChangeRecord): boolean {
  if (f.kinds && !f.kinds.has(r.kind)) return false;
  if (f.vms && (r.vmId === undefined || !f.vms.has(r.vmId))) return false;
  return true;
}

function parseSeq(v: string | undefined | null): number | undefined | 'bad' {
  if (v === undefined || v === null) return undefined;
  const t = v.trim();
  if (!/^\d+$/.test(t)) return 'bad';
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : 'bad';
}

function formatRecord(r: ChangeRecord): string {
  return `id: ${r.seq}\nevent: ${r.kind}\ndata: ${r.json}\n\n`;
}

export interface SseService {
  readonly handler: RouteHandler;
  /** Connected clients (the `xenops_sse_clients` gauge). */
  readonly clientCount: number;
  readonly clientUsage: LimitUsage;
  /** Ends every stream (the HTTP server waits for in-flight responses on close). */
  closeAll(): void;
}

export function createSseService(
  feed: ChangeFeed,
  log: EventLog,
  opts: { pingMs?: number; snapshots?: SnapshotStore; maxClients?: number } = {},
): SseService {
  const clients = new Set<() => void>();
  let closed = false;
  let refusals = 0;
  const pingMs = opts.pingMs ?? SSE_PING_MS;
  const maxClients = opts.maxClients ?? DEFAULT_LIMITS.maxSseClients;

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const header = req.headers['last-event-id'];
    const since = parseSeq(Array.isArray(header) ? header[0] : (header ?? url.searchParams.get('since')));
    const kindValues = url.searchParams.getAll('kind').flatMap((k) => k.split(',')).map((k) => k.trim().toLowerCase()).filter(Boolean);
    const vmValues = url.searchParams.getAll('vm').filter((v) => v !== '');
    if (since === 'bad' || kindValues.some((k) => !CHANGE_KINDS.includes(k as ChangeKind)) || closed) {
      res.writeHead(closed ? 503 : 400, { 'Content-Length': '0', Connection: 'close' });
      res.end();
      return;
    }
    if (clients.size >= maxClients) {
      refusals++;
      const reason = `too many GET /events clients (limit ${maxClients})`;
      res.writeHead(503, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(reason),
        'Retry-After': String(SSE_FULL_RETRY_AFTER_S),
        Connection: 'close',
      });
      res.end(reason);
      return;
    }
    const filter: Filter = {
      ...(kindValues.length ? { kinds: new Set(kindValues) } : {}),
      ...(vmValues.length ? { vms: new Set(vmValues) } : {}),
    };

    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'close',
      'X-Accel-Buffering': 'no',
    });
    res.write(`retry: ${SSE_RETRY_MS}\n\n`);

    let ended = false;
    let buffer: ChangeRecord[] | undefined = since === undefined ? undefined : [];
    const send = (records: readonly ChangeRecord[]) => {
      if (ended) return;
      let text = '';
      for (const r of records) if ((since === undefined || r.seq > since) && matches(filter, r)) text += formatRecord(r);
      if (!text) return;
      res.write(text);
      if (res.writableLength > MAX_BUFFERED_BYTES) end(true);
    };
    const sub = feed.subscribe((records) => {
      if (buffer) buffer.push(...records);
      else send(records);
    });
    const ping = setInterval(() => {
      if (!ended) res.write(': ping\n\n');
    }, pingMs);
    ping.unref();
    const end = (destroy = false) => {
      if (ended) return;
      ended = true;
      sub.unsubscribe();
      clearInterval(ping);
      clients.delete(stop);
      if (destroy) res.destroy();
      else res.end();
    };
    const stop = () => end(false);
    clients.add(stop);
    res.on('close', () => end(true));
    req.on('error', () => end(true));

    if (since !== undefined) {
      try {
        await replayRecords(
          log,
          since,
          sub.fromSeq,
          async (records) => {
            send(records);
            // Let a slow client drain before folding further.
            if (!ended && res.writableNeedDrain) await new Promise<void>((r) => res.once('drain', r).once('close', r));
          },
          () => ended,
          opts.snapshots,
        );
      } catch {
        end(true);
        return;
      }
      const pending = buffer ?? [];
      buffer = undefined;
      send(pending);
    }
  };

  return {
    handler,
    get clientCount() {
      return clients.size;
    },
    get clientUsage() {
      return { resource: 'sse_clients', limit: maxClients, inUse: clients.size, refusals };
    },
    closeAll() {
      closed = true;
      for (const stop of [...clients]) stop();
    },
  };
}
