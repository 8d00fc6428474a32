/**
 * The fold-helper's worker (fold-helper.ts): the read model's own fold (a `Projection` with the
 * UPDATES set attached, as a gateway has it) over the pages it is sent, answered as a snapshot.
 * It never touches a store: the log it is given refuses every call.
 */
import { parentPort } from 'node:worker_threads';
import { StoreUnavailableError, type EventLog } from '@xenops/core';
import { UpdatesService } from '../updates/updates-service.js';
import { transferOf, unpackPage, type FromHelper, type ToHelper } from './fold-helper.js';
import { Projection } from './projection.js';

const port = parentPort!;
const refuse = (): never => {
  throw new StoreUnavailableError("the fold's worker has no store");
};
const noLog: EventLog = {
  append: refuse,
  head: refuse,
  firstSeq: refuse,
  truncateBefore: refuse,
  lastSeqOf: refuse,
  read: refuse,
  readPages: refuse,
  readStream: refuse,
  tail: refuse,
  close: async () => {},
};

const projection = new Projection(noLog);
new UpdatesService(projection, noLog, { hostId: '' });
const half = projection.foldHalf();

port.on('message', (m: ToHelper) => {
  try {
    if ('page' in m) {
      for (const message of unpackPage(m.page)) half.apply(message);
      // Back to be filled again: nothing folded keeps a view of its bytes (strings are copied out).
      port.postMessage({ folded: { ...m.page, streams: [] } } satisfies FromHelper, transferOf(m.page));
    } else {
      port.postMessage({ done: half.result() } satisfies FromHelper);
      port.close();
    }
  } catch (e) {
    port.postMessage({ error: (e as Error).stack ?? String(e) } satisfies FromHelper);
  }
});
