/** Publishes change records on `xenops.updates.<kind>.<id>` (core NATS, at most once; §9.4). */
import type { NatsConnection } from '@nats-io/transport-node';
import { outboundWindowOf } from '@xenops/core';
import type { ChangeFeed } from './change-feed.js';

export function publishChanges(feed: ChangeFeed, nc: NatsConnection, log: (line: string) => void): () => void {
  const encoder = new TextEncoder();
  // Sent with the store's own sends of the same turn: one socket write for all of them.
  const outbound = outboundWindowOf(nc, log);
  let warned = false;
  const { unsubscribe } = feed.subscribe((records) => {
    outbound.defer(() => {
      for (const r of records) {
        try {
          nc.publish(r.subject, encoder.encode(r.json));
        } catch (e) {
          if (!warned) log(`changes: cannot publish on ${r.subject}: ${(e as Error).message}`);
          warned = true;
        }
      }
    });
  });
  return unsubscribe;
}
