import { readFileSync } from 'node:fs';
import { agentSnapshotKey } from '@xenops/actors';
import { ANY_AGENT, Streams } from '@xenops/core';
import { CHANGE_SUBJECT_ROOT, CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP, REFRESH_STREAM } from '@xenops/gateway';
import { kvKey, natsNames } from '@xenops/store-nats';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDaemonArgs } from './config.js';
import { natsPermissionsText, natsRolePermissions, type NatsPermissions } from './nats-permissions.js';

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const mayPublish = (p: NatsPermissions, subject: string) => p.publish.some((a) => matches(a, subject));
/** A plain or queue subscription (`<subject> <queue>` entries allow only that queue group). */
const maySubscribe = (p: NatsPermissions, subject: string, queue?: string) =>
  p.subscribe.some((a) => {
    const [s, q] = a.split(' ');
    return matches(s!, subject) && (q === undefined || q === queue);
  });

const prefix = 'xenops';
const hostId = 'host-a';
const gateway = natsRolePermissions({ role: 'gateway', prefix, hostId });
const agent = natsRolePermissions({ role: 'agent', prefix, hostId });
const n = natsNames(prefix);

describe('per-role NATS permissions', () => {
  it("README's blocks are exactly what xenopsd --nats-permissions prints", () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    for (const role of ['gateway', 'agent'] as const) {
      const m = new RegExp(`<!-- nats-permissions ${role}:[^\\n]*-->\\n\`\`\`\\n([\\s\\S]*?)\`\`\`\\n`).exec(readme);
      expect(m, `README block for ${role}`).not.toBeNull();
      expect(m![1]).toBe(natsPermissionsText({ role, prefix, hostId }));
    }
  });

  it('the host registry: each agent writes its own host only, the gateway none; leases are the gateway\'s (issue 14)', () => {
    expect(mayPublish(agent, `$KV.${n.hostsBucket}.host-a`)).toBe(true);
    expect(mayPublish(agent, `$KV.${n.hostsBucket}.host-b`)).toBe(false);
    expect(mayPublish(gateway, `$KV.${n.hostsBucket}.host-a`)).toBe(false);
    expect(mayPublish(gateway, `$KV.${n.leasesBucket}.task-reaper`)).toBe(true);
    expect(mayPublish(agent, `$KV.${n.leasesBucket}.task-reaper`)).toBe(false);
    expect(mayPublish(gateway, `$JS.API.DIRECT.GET.${n.hostsStream}.$KV.${n.hostsBucket}.host-a`)).toBe(true);
  });

  it('VM streams: the agent may append, the gateway may not', () => {
    const vm = n.eventSubject(Streams.vm('5f0c7a3e-2b1d-4c55-9a10-0123456789ab'));
    expect(mayPublish(agent, vm)).toBe(true);
    expect(mayPublish(gateway, vm)).toBe(false);
    // nor through the one-token spelling of an old-layout stream
    expect(mayPublish(gateway, n.eventSubject(Streams.vm('x'), 1))).toBe(false);
  });

  it('the streams only gateways write are allowed to the gateway and not to the agent; a host stream to its own agent only (docs/streams.md)', () => {
    for (const key of [Streams.task('unrouted'), Streams.barriers(), REFRESH_STREAM]) {
      expect(mayPublish(gateway, n.eventSubject(key)), key).toBe(true);
      expect(mayPublish(agent, n.eventSubject(key)), key).toBe(false);
    }
    // task/<id> streams are read in old logs and written by nobody any more.
    expect(mayPublish(gateway, n.eventSubject(Streams.task('12')))).toBe(false);
    expect(mayPublish(agent, n.eventSubject(Streams.task('12')))).toBe(false);
    expect(mayPublish(gateway, n.eventSubject(Streams.host(hostId)))).toBe(false);
    expect(mayPublish(agent, n.eventSubject(Streams.host(hostId)))).toBe(true);
    expect(mayPublish(gateway, n.eventSubject(Streams.host('host-b')))).toBe(false);
    expect(mayPublish(agent, n.eventSubject(Streams.host('host-b')))).toBe(false);
  });

  it('commands: the gateway sends to any host; the agent serves its own and any agent’s, in its queue group only', () => {
    expect(mayPublish(gateway, n.commandSubject('host-b'))).toBe(true);
    expect(mayPublish(gateway, n.commandSubject(ANY_AGENT))).toBe(true);
    expect(maySubscribe(agent, n.commandSubject(ANY_AGENT), n.queueGroup)).toBe(true);
    expect(maySubscribe(agent, n.commandSubject(ANY_AGENT))).toBe(false);
    expect(mayPublish(agent, n.commandSubject(hostId))).toBe(false);
    expect(maySubscribe(agent, n.commandSubject(hostId), n.queueGroup)).toBe(true);
    expect(maySubscribe(agent, n.commandSubject(hostId))).toBe(false);
    expect(maySubscribe(agent, n.commandSubject('host-b'), n.queueGroup)).toBe(false);
    expect(maySubscribe(gateway, n.commandSubject(hostId), n.queueGroup)).toBe(false);
  });

  it('the gateway serves JSON-RPC (§2.7) and publishes change records (§9.4); the agent neither', () => {
    expect(maySubscribe(gateway, CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP)).toBe(true);
    expect(maySubscribe(agent, CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP)).toBe(false);
    expect(mayPublish(gateway, `${CHANGE_SUBJECT_ROOT}.vm.x`)).toBe(true);
    expect(mayPublish(agent, `${CHANGE_SUBJECT_ROOT}.vm.x`)).toBe(false);
    const q = natsRolePermissions({ role: 'gateway', prefix, hostId, rpcSubject: 'my.queue' });
    expect(maySubscribe(q, 'my.queue', GATEWAY_QUEUE_GROUP)).toBe(true);
    expect(maySubscribe(q, CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP)).toBe(false);
  });

  it('snapshots: both read, the gateway writes its read model’s, the agent its own only; only a gateway with retention purges the log; nobody creates or deletes streams', () => {
    for (const p of [gateway, agent]) {
      expect(mayPublish(p, `$JS.API.DIRECT.GET.${n.kvStream}.$KV.${n.kvBucket}.fold`)).toBe(true);
      expect(mayPublish(p, `$JS.API.CONSUMER.CREATE.${n.stream}.c1.${prefix}.ev.vm.x`)).toBe(true);
    }
    expect(mayPublish(gateway, `$KV.${n.kvBucket}.fold`)).toBe(true);
    expect(mayPublish(agent, `$KV.${n.kvBucket}.fold`)).toBe(false);
    expect(mayPublish(agent, `$KV.${n.kvBucket}.${kvKey(agentSnapshotKey(hostId))}`)).toBe(true);
    expect(mayPublish(agent, `$KV.${n.kvBucket}.${kvKey(agentSnapshotKey('host-b'))}`)).toBe(false);
    // A big snapshot goes to the object store, whose object names are not the key's.
    expect(mayPublish(agent, `$O.${n.objectBucket}.C.abc`)).toBe(true);
    const purge = `$JS.API.STREAM.PURGE.${n.stream}`;
    expect(mayPublish(gateway, purge)).toBe(false);
    expect(mayPublish(natsRolePermissions({ role: 'gateway', prefix, hostId, retention: true }), purge)).toBe(true);
    expect(mayPublish(natsRolePermissions({ role: 'agent', prefix, hostId, retention: true }), purge)).toBe(false);
    const all = natsRolePermissions({ role: 'all', prefix, hostId, retention: true });
    for (const api of ['CREATE', 'UPDATE', 'DELETE']) {
      for (const stream of [n.stream, n.kvStream, n.objectStream]) {
        for (const p of [gateway, agent, all]) expect(mayPublish(p, `$JS.API.STREAM.${api}.${stream}`)).toBe(false);
      }
    }
  });

  it('each role gets replies on its own inbox; role all has both roles’ rights', () => {
    expect(maySubscribe(gateway, `${n.inboxPrefix('gateway')}.abc.1`)).toBe(true);
    expect(maySubscribe(gateway, `${n.inboxPrefix('agent')}.abc.1`)).toBe(false);
    expect(maySubscribe(gateway, '_INBOX.abc.1')).toBe(false);
    const all = natsRolePermissions({ role: 'all', prefix, hostId });
    expect(maySubscribe(all, `${n.inboxPrefix('all')}.abc.1`)).toBe(true);
    for (const s of [...gateway.publish, ...agent.publish]) expect(all.publish).toContain(s);
    expect(all.subscribe).toEqual(expect.arrayContaining([`${n.commandSubject(hostId)} ${n.queueGroup}`, `${CLASSIC_QUEUE} ${GATEWAY_QUEUE_GROUP}`]));
  });

  it('xenopsd flags: --nats-permissions and --nats-setup', () => {
    const c = parseDaemonArgs(['--nats-permissions', 'agent', '--nats-prefix', 'p1', '--host-id', 'h'], {});
    expect(c).toMatchObject({ oneShot: { action: 'nats-permissions', role: 'agent', prefix: 'p1' }, hostId: 'h' });
    expect(parseDaemonArgs(['--nats-setup', '--nats', 'nats://x:4222'], {})).toMatchObject({ oneShot: { action: 'nats-setup' } });
    expect(() => parseDaemonArgs(['--nats-setup'], {})).toThrow(ConfigError);
    expect(() => parseDaemonArgs(['--nats-permissions', 'admin'], {})).toThrow(/--nats-permissions must be gateway, agent or all/);
    expect(() => parseDaemonArgs(['--nats-setup', '--nats-permissions', 'agent', '--nats', 'nats://x'], {})).toThrow(/two separate actions/);
    expect(() => parseDaemonArgs(['--nats', 'nats://x', '--nats-tls-cert', 'c.pem'], {})).toThrow(/needs both --nats-tls-cert and --nats-tls-key/);
    expect(parseDaemonArgs(['--nats', 'nats://x', '--nats-tls-cert', 'c.pem', '--nats-tls-key', 'k.pem'], {})).toMatchObject({
      nats: { tlsCertFile: 'c.pem', tlsKeyFile: 'k.pem' },
    });
  });
});
