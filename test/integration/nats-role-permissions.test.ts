/**
 * The stores of each role, opened with exactly that role's NATS permissions on a private
 * nats-server: the paths the end-to-end lifecycle does not reach (snapshots too big for one KV
 * value, i.e. the object store; retention's purge) work with the role that uses them, and what a
 * role must not do fails at once with a StorePermissionError instead of hanging or succeeding.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSnapshotKey } from '@xenops/actors';
import { StorePermissionError, Streams, type Stores } from '@xenops/core';
import { openNatsStores, setupNatsResources } from '@xenops/store-nats';
import { formatNatsPermissions, natsRolePermissions } from '../../packages/xenopsd/src/daemon/nats-permissions.js';
import { startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { makeNkeyUser, natsServerConfig, type NkeyUser } from '../support/secure-nats.js';
import { stopAll, uniquePrefix } from '../support/xenopsd.js';

const prefix = uniquePrefix('roles');
const hostId = 'host-a';
let server: OwnNatsServer;
let admin: NkeyUser, gatewayUser: NkeyUser, agentUser: NkeyUser, retentionUser: NkeyUser;
const opened: Stores[] = [];

async function open(role: 'gateway' | 'agent', user: NkeyUser): Promise<Stores> {
  const s = await openNatsStores({ servers: server.url, prefix, role, nkeyFile: user.seedFile, name: `test ${role}` });
  opened.push(s);
  return s;
}

beforeAll(async () => {
  [admin, gatewayUser, agentUser, retentionUser] = await Promise.all(['admin', 'gateway', 'agent', 'retention'].map((t) => makeNkeyUser(t)));
  const block = (role: 'gateway' | 'agent', retention = false) => formatNatsPermissions(natsRolePermissions({ role, prefix, hostId, retention }));
  server = await startOwnNatsServer({
    config: (port, dir) =>
      natsServerConfig(port, dir, {
        nkeyUsers: [
          { nkey: admin.publicKey },
          { nkey: gatewayUser.publicKey, permissions: block('gateway') },
          { nkey: agentUser.publicKey, permissions: block('agent') },
          { nkey: retentionUser.publicKey, permissions: block('gateway', true) },
        ],
      }),
  });
  await setupNatsResources({ servers: server.url, prefix, nkeyFile: admin.seedFile });
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await server?.stop();
  await stopAll();
});

describe('stores opened with exactly a role’s permissions', () => {
  it('the gateway writes a big (object store) snapshot, the agent reads it, the gateway replaces and deletes it', async () => {
    const gateway = await open('gateway', gatewayUser);
    const agent = await open('agent', agentUser);
    const big = randomBytes(3 * 1024 * 1024);
    await gateway.snapshots.put('fold', { seq: 5, data: big });
    const read = await agent.snapshots.get('fold');
    expect(read?.seq).toBe(5);
    expect(Buffer.compare(Buffer.from(read!.data), big)).toBe(0);
    const bigger = randomBytes(2 * 1024 * 1024);
    await gateway.snapshots.put('fold', { seq: 9, data: bigger }); // replaces: deletes the old object
    expect(Buffer.compare(Buffer.from((await agent.snapshots.get('fold'))!.data), bigger)).toBe(0);
    await gateway.snapshots.delete('fold');
    expect(await agent.snapshots.get('fold')).toBeUndefined();
    expect(server.output).not.toMatch(/Violation/);
  });

  it('the agent writes its own snapshot, small or big (object store), and the gateway reads it', async () => {
    const gateway = await open('gateway', gatewayUser);
    const agent = await open('agent', agentUser);
    const key = agentSnapshotKey(hostId);
    await agent.snapshots.put(key, { seq: 3, data: new Uint8Array([1, 2, 3]) });
    expect((await gateway.snapshots.get(key))?.seq).toBe(3);
    const big = randomBytes(3 * 1024 * 1024);
    await agent.snapshots.put(key, { seq: 7, data: big });
    expect(Buffer.compare(Buffer.from((await gateway.snapshots.get(key))!.data), big)).toBe(0);
    await agent.snapshots.put(key, { seq: 8, data: new Uint8Array([4]) }); // replaces: deletes the object
    expect([...(await agent.snapshots.get(key))!.data]).toEqual([4]);
    expect(server.output).not.toMatch(/Violation/);
  });

  it('the agent may not write other snapshots, nor the gateway append to a VM or host stream, nor purge the log without retention: refused at once', async () => {
    const gateway = await open('gateway', gatewayUser);
    const agent = await open('agent', agentUser);
    const t0 = Date.now();
    const put = await agent.snapshots.put('probe', { seq: 1, data: new Uint8Array(10) }).catch((e: unknown) => e);
    expect(put).toBeInstanceOf(StorePermissionError);
    expect((put as StorePermissionError).subject).toBe(`$KV.${prefix}_snapshots.probe`);
    const head = await gateway.log.head();
    const append = await gateway.log.append({ stream: Streams.vm('v1'), data: new Uint8Array(1) }).catch((e: unknown) => e);
    expect(append).toBeInstanceOf(StorePermissionError);
    expect(append).toMatchObject({ code: 'PERMISSION_VIOLATION', operation: 'publish', subject: `${prefix}.ev.vm.v1` });
    expect((append as Error).message).toBe(`append to vm/v1 failed: these NATS credentials may not publish to ${prefix}.ev.vm.v1 (permissions violation)`);
    const purge = await gateway.log.truncateBefore(head).catch((e: unknown) => e);
    expect(purge).toBeInstanceOf(StorePermissionError);
    // docs/streams.md: a host's stream is its agent's; task/<id> streams are written by nobody any more
    await expect(gateway.log.append({ stream: Streams.host(hostId), data: new Uint8Array(1) })).rejects.toBeInstanceOf(StorePermissionError);
    await expect(gateway.log.append({ stream: Streams.task('1'), data: new Uint8Array(1) })).rejects.toBeInstanceOf(StorePermissionError);
    await expect(agent.snapshots.put(agentSnapshotKey('host-b'), { seq: 1, data: new Uint8Array(1) })).rejects.toBeInstanceOf(StorePermissionError);
    // the agent writes VM streams and its own host's, nobody else's
    expect(await agent.log.append({ stream: Streams.vm('v1'), data: new Uint8Array(1) })).toBe(head + 1);
    expect(await agent.log.append({ stream: Streams.host(hostId), data: new Uint8Array(1) })).toBe(head + 2);
    await expect(agent.log.append({ stream: Streams.host('host-b'), data: new Uint8Array(1) })).rejects.toBeInstanceOf(StorePermissionError);
    await expect(agent.log.append({ stream: Streams.task('1'), data: new Uint8Array(1) })).rejects.toBeInstanceOf(StorePermissionError);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await gateway.log.head()).toBe(head + 2);
  });

  it('a gateway with --retention-days may purge the log', async () => {
    const gateway = await open('gateway', retentionUser);
    const agent = await open('agent', agentUser);
    const first = await agent.log.append({ stream: Streams.vm('v2'), data: new Uint8Array(1) });
    await agent.log.append({ stream: Streams.vm('v2'), data: new Uint8Array(1) });
    await gateway.log.truncateBefore(first + 1);
    expect(await gateway.log.firstSeq()).toBe(first + 1);
  });

  it('a role cannot read the seed file of a missing nkey: one typed error naming it', async () => {
    const err = await openNatsStores({ servers: server.url, prefix, nkeyFile: '/nonexistent/seed.nk' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'NatsAuthenticationError', code: 'NATS_AUTHENTICATION' });
    expect((err as Error).message).toMatch(/^cannot read the NATS nkey file \/nonexistent\/seed\.nk: ENOENT/);
    expect(readFileSync(admin.seedFile, 'utf8')).toMatch(/^SU/);
  });
});
