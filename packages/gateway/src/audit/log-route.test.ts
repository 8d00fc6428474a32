import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBatch, Streams, type EventBody, type Stores } from '@xenops/core';
import { vmConfig } from '@xenops/core/testing';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logRoute, type AuditEntry } from './log-route.js';

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'test' };
const named = (id: string, name: string) => ({ ...vmConfig(id), name });

/** Serves `GET <url>` with the route and returns the entries it wrote. */
async function get(route: ReturnType<typeof logRoute>, url: string): Promise<AuditEntry[]> {
  let body = '';
  const res = {
    destroyed: false,
    writeHead: () => res,
    write: (chunk: string) => ((body += chunk), true),
    end: (chunk?: string) => void (body += chunk ?? ''),
  };
  await route({ url } as IncomingMessage, res as unknown as ServerResponse);
  return body
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
}

describe('GET /log names the VMs', () => {
  let dir: string;
  let stores: Stores;
  const append = (vmId: string, body: EventBody) => stores.log.append({ stream: Streams.vm(vmId), data: encodeBatch([{ audit, body }]) });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenops-log-route-'));
    stores = await openEmbeddedStores({ dataDir: dir });
    await append('a', { type: 'VmAdded', vmId: 'a', config: named('a', 'web01') }); // 1
    await append('b', { type: 'VmAdded', vmId: 'b', config: named('b', 'db01') }); // 2
    await append('a', { type: 'DomainPaused', vmId: 'a' }); // 3
    await append('a', { type: 'VmAdded', vmId: 'a', config: named('a', 'web02') }); // 4: re-added under another name
    await append('a', { type: 'DomainUnpaused', vmId: 'a' }); // 5
  });
  afterEach(async () => {
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('with the name each VM had when the event was logged, from the events read', async () => {
    const entries = await get(logRoute(stores.log), '/log?since=0');
    expect(entries.map((e) => [e.seq, e.vm, e.vm_name])).toEqual([
      [1, 'a', 'web01'],
      [2, 'b', 'db01'],
      [3, 'a', 'web01'],
      [4, 'a', 'web02'],
      [5, 'a', 'web02'],
    ]);
  });

  it('with the current name for a VM added before the range, and none for a VM nobody knows', async () => {
    const current = new Map([['a', 'web02']]);
    const entries = await get(logRoute(stores.log, (id) => current.get(id)), '/log?since=2');
    expect(entries.map((e) => [e.seq, e.vm_name])).toEqual([
      [3, 'web02'],
      [4, 'web02'],
      [5, 'web02'],
    ]);
    expect((await get(logRoute(stores.log), '/log?since=2'))[0]).not.toHaveProperty('vm_name');
  });
});
