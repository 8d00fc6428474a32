import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBatch, Streams, type Stores } from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Projection } from '../read-model/projection.js';
import { ChangeFeed } from './change-feed.js';
import type { ChangeRecord } from './records.js';

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };

describe('ChangeFeed', () => {
  let dir: string;
  let stores: Stores;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-change-feed-'));
    stores = await openEmbeddedStores({ dataDir: dir });
  });
  afterEach(async () => {
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs a failing listener and still hands the records to the others', async () => {
    const projection = new Projection(stores.log);
    await projection.start();
    const lines: string[] = [];
    const feed = new ChangeFeed(projection, (l) => lines.push(l));
    const received: ChangeRecord[] = [];
    feed.subscribe(() => {
      throw new Error('the subscriber is gone');
    });
    feed.subscribe((records) => received.push(...records));
    const body = { type: 'TaskCreated', vmId: 'a', operation: { kind: 'VM.pause' }, host: 'h', ctimeMs: 0 } as const;
    const seq = await stores.log.append({ stream: Streams.vm('a'), data: encodeBatch([{ audit, body }]) });
    await projection.waitFor(seq);
    expect(received.length).toBeGreaterThan(0);
    expect(lines).toEqual([`change feed: a listener failed at seq ${seq}: the subscriber is gone`]);
    await projection.close();
  });
});
