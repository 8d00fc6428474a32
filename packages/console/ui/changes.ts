/**
 * The live feed: `GET /events` (API.md §9.4) read with `fetch`, so the bearer token can go in a
 * header (an EventSource cannot send one), parsed by eventsource-parser. On a drop it resumes
 * from the last seq it saw (`Last-Event-ID`), after the server's `retry`.
 */
import { createParser } from 'eventsource-parser';
import { authHeaders, UnauthorizedError } from './api.js';
import type { ChangeRecord } from './wire.js';

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

export interface FeedOptions {
  /** Records after this seq are delivered (from the log, then live). */
  readonly since: number;
  readonly onRecord: (r: ChangeRecord) => void;
  readonly onState: (s: FeedState) => void;
}

/** Follows the change stream until the returned function is called. */
export function followChanges(o: FeedOptions): () => void {
  const stop = new AbortController();
  // Several records share a seq (one per object a message changed): a seq is complete once a
  // later one arrives, and a resumed stream starts after the last complete one (records are
  // whole values, so one delivered twice changes nothing).
  let complete = o.since;
  let current = o.since;
  let retryMs = 2000;
  void (async () => {
    while (!stop.signal.aborted) {
      o.onState(current === o.since ? 'connecting' : 'reconnecting');
      try {
        const res = await fetch(`/events?since=${complete}`, { headers: { accept: 'text/event-stream', ...authHeaders() }, signal: stop.signal });
        if (res.status === 401) throw new UnauthorizedError();
        if (!res.ok || !res.body) throw new Error(`GET /events: HTTP ${res.status}`);
        o.onState('live');
        const parser = createParser({
          onEvent: (m) => {
            const r = JSON.parse(m.data) as ChangeRecord;
            if (r.seq > current) {
              complete = current;
              current = r.seq;
            }
            o.onRecord(r);
          },
          onRetry: (ms) => (retryMs = ms),
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch (e) {
        if (stop.signal.aborted) return;
        if (e instanceof UnauthorizedError) {
          o.onState('unauthorized');
          return;
        }
      }
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, retryMs));
    }
  })();
  return () => stop.abort();
}
