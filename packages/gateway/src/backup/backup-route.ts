import type { IncomingMessage, ServerResponse } from 'node:http';
import { FOLD_SNAPSHOT_KEY, type Stores } from '@xenops/core';

function sendError(res: ServerResponse, status: number, message: string): void {
  const text = JSON.stringify({ error: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Resolves when the response can take more, or when the client has gone (then false). */
function writable(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/**
 * `GET /backup`: a consistent copy of the running store as a backup file (`xenops backup`, issue
 * 11), streamed as it is made. Embedded: SQLite's online backup, which only this process can take
 * (it holds the database's lock). NATS: a JetStream snapshot of the event stream and the fold
 * snapshot, so a restored service starts without replaying more than the snapshot leaves out.
 * Subject to the same token rules as every route but `/healthz` (API.md §2.1).
 */
export function backupRoute(stores: Stores, version: string, log: (line: string) => void) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!stores.backup) {
      sendError(res, 501, `the ${stores.mode} store of this service cannot be backed up`);
      return;
    }
    let backup;
    try {
      backup = await stores.backup({ writer: version, snapshotKeys: [FOLD_SNAPSHOT_KEY] });
    } catch (e) {
      const message = (e as Error).message;
      log(`backup: ${message}`);
      sendError(res, 503, message);
      return;
    }
    const { header } = backup;
    const headers: Record<string, string> = {
      'content-type': 'application/vnd.xenops.backup',
      'x-xenops-backup-mode': header.mode,
      'x-xenops-backup-head-seq': String(header.head_seq),
    };
    if (header.embedded) headers['x-xenops-backup-payload-bytes'] = String(header.embedded.bytes);
    res.writeHead(200, headers);
    const bytes = backup.bytes[Symbol.asyncIterator]();
    let sent = 0;
    try {
      for (;;) {
        const next = await bytes.next();
        if (next.done) break;
        sent += next.value.byteLength;
        if (!res.write(next.value) && !(await writable(res))) {
          log(`backup: the client went away after ${sent} bytes`);
          await bytes.return?.(undefined);
          return;
        }
      }
      res.end();
      log(`backup: ${header.mode} store, seqs ${header.first_seq}..${header.head_seq}, ${sent} bytes sent`);
    } catch (e) {
      // Headers are gone: the client sees a cut-off file, which its check refuses.
      log(`backup failed after ${sent} bytes: ${(e as Error).message}`);
      await bytes.return?.(undefined).catch(() => undefined);
      res.destroy();
    }
  };
}
