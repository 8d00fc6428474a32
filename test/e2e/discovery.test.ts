/**
 * NATS-native discovery (issue 16 item 2): every xenopsd process on NATS answers the NATS micro
 * protocol, so a stock services client finds every gateway and agent of a prefix, with name,
 * version, role, host id and endpoints, and reads their stats; a stopped process leaves the list.
 */
import { readFileSync } from 'node:fs';
import { Svcm, type ServiceIdentity, type ServiceInfo, type ServiceStats } from '@nats-io/services';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusSubject } from '../../packages/xenopsd/src/daemon/discovery.js';
import { cleanupAll, NATS_URL, REPO_ROOT, spawnXenopsd, uniquePrefix, uniqueSuffix, type Xenopsd } from '../support/xenopsd.js';

const VERSION = (JSON.parse(readFileSync(`${REPO_ROOT}/packages/xenopsd/package.json`, 'utf8')) as { version: string }).version;

let nc: NatsConnection;
const prefix = uniquePrefix('disc');
const hostA = `a-${uniqueSuffix()}`;
const hostB = `b-${uniqueSuffix()}`;
let gateway: Xenopsd;
let agentA: Xenopsd;
let agentB: Xenopsd;

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  const nats = ['--socket', 'off'];
  agentA = await spawnXenopsd({ mode: 'nats', role: 'agent', hostId: hostA, natsPrefix: prefix, extraArgs: nats });
  agentB = await spawnXenopsd({ mode: 'nats', role: 'agent', hostId: hostB, natsPrefix: prefix, extraArgs: nats });
  gateway = await spawnXenopsd({ mode: 'nats', role: 'gateway', hostId: hostA, natsPrefix: prefix });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await cleanupAll();
});

/** Every answer of a micro request, keeping only this test's processes (other tests share the server). */
async function ours<T extends ServiceIdentity & { metadata?: Record<string, string> }>(answers: Promise<AsyncIterable<T>>): Promise<T[]> {
  const out: T[] = [];
  for await (const a of await answers) if (a.metadata?.prefix === prefix) out.push(a);
  return out.sort((x, y) => `${x.metadata!.role}/${x.metadata!.host_id}`.localeCompare(`${y.metadata!.role}/${y.metadata!.host_id}`));
}

describe('NATS-native discovery', () => {
  it('$SRV.PING finds every process of the prefix, with name, version, role and host id', async () => {
    const found = await ours(new Svcm(nc).client().ping('xenopsd'));
    expect(found.map((s) => [s.name, s.version, s.metadata!.role, s.metadata!.host_id, s.metadata!.pid])).toEqual([
      ['xenopsd', VERSION, 'agent', hostA, String(agentA.pid)],
      ['xenopsd', VERSION, 'agent', hostB, String(agentB.pid)],
      ['xenopsd', VERSION, 'gateway', hostA, String(gateway.pid)],
    ]);
    expect(new Set(found.map((s) => s.id)).size).toBe(3);
  });

  it('$SRV.INFO lists the endpoints and the subjects each process serves', async () => {
    const infos: ServiceInfo[] = await ours(new Svcm(nc).client().info('xenopsd'));
    expect(infos).toHaveLength(3);
    const [a, , g] = infos;
    expect(a!.endpoints).toEqual([expect.objectContaining({ name: 'status', subject: statusSubject(prefix, 'agent', hostA) })]);
    expect(a!.metadata).toMatchObject({ command_subject: `${prefix}.cmd.${hostA}`, backend: 'simulator' });
    expect(g!.endpoints).toEqual([expect.objectContaining({ name: 'status', subject: statusSubject(prefix, 'gateway', hostA) })]);
    expect(g!.metadata).toMatchObject({ rpc_subject: 'org.xen.xapi.xenops.classic', http: new URL(gateway.url!).host });
    expect(g!.description).toContain(`gateway of host ${hostA}`);
  });

  it('the status endpoint answers, and $SRV.STATS counts its requests', async () => {
    const reply = await nc.request(statusSubject(prefix, 'agent', hostB), '', { timeout: 5_000 });
    expect(reply.json()).toMatchObject({ role: 'agent', host_id: hostB, version: VERSION, pid: agentB.pid, store: 'nats', backend: 'simulator' });
    const stats: ServiceStats[] = await ours(new Svcm(nc).client().stats('xenopsd'));
    const b = stats.find((s) => s.metadata?.host_id === hostB && s.metadata.role === 'agent')!;
    expect(b.endpoints?.[0]).toMatchObject({ name: 'status', num_requests: 1, num_errors: 0 });
  });

  it('a stopped process leaves the registry', async () => {
    expect(await agentB.stop('SIGTERM')).toBe(0);
    const found = await ours(new Svcm(nc).client().ping('xenopsd'));
    expect(found.map((s) => `${s.metadata!.role}/${s.metadata!.host_id}`)).toEqual([`agent/${hostA}`, `gateway/${hostA}`]);
  });
});
