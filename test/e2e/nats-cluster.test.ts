/**
 * A three-server NATS cluster (routes on loopback ports, JetStream clustered), with the stream
 * and both buckets replicated 3 ways by `xenopsd --nats-replicas 3` (README "Running a cluster"):
 * a gateway and an agent connected to all three servers keep serving while the server that leads
 * the event stream is killed with SIGKILL mid-run, and nothing acknowledged is lost.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { X, type RpcClient } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, runXenopsdToExit, spawnXenopsd, uniquePrefix, uniqueSuffix, type Xenopsd } from '../support/xenopsd.js';

const servers: OwnNatsServer[] = [];
const names: string[] = [];
let urls: string;
let admin: NatsConnection;
let jsm: JetStreamManager;

afterAll(async () => {
  await admin?.close();
  await cleanupAll();
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
});

beforeAll(async () => {
  const clusterPorts = await Promise.all([0, 1, 2].map(() => freePort()));
  const tag = uniqueSuffix();
  for (let i = 0; i < 3; i++) {
    const name = `n${i + 1}-${tag}`;
    names.push(name);
    const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
    servers.push(
      await startOwnNatsServer({
        config: (port, dir) =>
          [
            `server_name: ${name}`,
            `listen: 127.0.0.1:${port}`,
            `jetstream { store_dir: "${dir}" }`,
            `cluster { name: xenops-${tag}, listen: 127.0.0.1:${clusterPorts[i]}, routes: [${routes.map((r) => `"${r}"`).join(', ')}] }`,
          ].join('\n'),
      }),
    );
  }
  urls = servers.map((s) => s.url).join(',');
  admin = await connect({ servers: servers.map((s) => s.url) });
  // Not checked at once: the cluster's JetStream answers only once it has elected its meta leader.
  jsm = await jetstreamManager(admin, { checkAPI: false });
  // The cluster's JetStream needs its meta leader before anything can be created.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await jsm.getAccountInfo();
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`JetStream cluster not ready: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}, 60_000);

describe('a three-server NATS cluster', () => {
  it('--nats-replicas is checked: 1 to 5, with --nats', async () => {
    for (const bad of ['0', '6', 'three', '']) {
      const r = await runXenopsdToExit(['--nats', urls, '--nats-replicas', bad, '--nats-setup']);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain('--nats-replicas must be a number of copies from 1 to 5');
    }
    const r = await runXenopsdToExit(['--nats-replicas', '3', '--nats-setup']);
    expect(r.code).toBe(2);
  });

  it('replicates the stream and buckets 3 ways and loses nothing acknowledged when the stream leader is killed', { timeout: 180_000 }, async () => {
    const prefix = uniquePrefix('clu');
    const setup = await runXenopsdToExit(['--nats-setup', '--nats', urls, '--nats-prefix', prefix, '--nats-replicas', '3']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout).toContain('3 replica(s)');
    for (const stream of [`${prefix}_EVENTS`, `KV_${prefix}_snapshots`, `OBJ_${prefix}_snapshots`, `KV_${prefix}_hosts`, `KV_${prefix}_leases`]) {
      expect((await jsm.streams.info(stream)).config.num_replicas, stream).toBe(3);
    }

    const hostId = `h-${uniqueSuffix()}`;
    const nats = ['--nats', urls, '--nats-prefix', prefix];
    const agent: Xenopsd = await spawnXenopsd({ mode: 'embedded', role: 'agent', hostId, extraArgs: ['--socket', 'off', ...nats] });
    const gateway: Xenopsd = await spawnXenopsd({ mode: 'embedded', role: 'gateway', hostId, extraArgs: nats });
    const c: RpcClient = gateway.client();

    // Eight writers add VMs for as long as the test runs; an id is acknowledged when VM.add answered it.
    const acknowledged: string[] = [];
    const failures: string[] = [];
    let running = true;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const id = vmId(`w${w}-${i}`);
        const r = await c.named('VM.add', X({ vm: xenopsdVm(id, { name: `w${w}-${i}` }) })).catch((e: unknown) => ({ ok: false as const, error: String(e) }));
        if (r.ok) acknowledged.push(id);
        else failures.push(JSON.stringify(r.error));
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    const waitFor = async (n: number) => {
      const deadline = Date.now() + 60_000;
      while (acknowledged.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${acknowledged.length} writes acknowledged (failures: ${failures.slice(-3).join('; ')})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFor(100);

    const leader = (await jsm.streams.info(`${prefix}_EVENTS`)).cluster?.leader;
    const victim = names.indexOf(leader!);
    expect(victim, `stream leader ${leader}`).toBeGreaterThanOrEqual(0);
    const beforeKill = acknowledged.length;
    await servers[victim]!.stop('SIGKILL');
    // Writes go on through the two servers left (a new stream leader is elected).
    await waitFor(beforeKill + 100);
    running = false;
    await Promise.all(writers);

    const listed = new Set((await c.ok<Array<[{ id: string }, unknown]>>('VM.list', X({}))).map(([vm]) => vm.id));
    const lost = acknowledged.filter((id) => !listed.has(id));
    expect(lost).toEqual([]);
    // A replay of the whole log through the new stream leader: answered 503 while it cannot be read
    // yet; its ok includes the invariant monitor (no VM ever had two domains or two hosts).
    let report: { ok: boolean; invariantViolations?: unknown[] } | undefined;
    const verified = await expect
      .poll(
        async () => {
          report = (await (await fetch(`${gateway.url}/verify`)).json()) as { ok: boolean; invariantViolations?: unknown[] };
          return report.ok;
        },
        // 60 s: on a loaded 2-core CI machine the STREAM.INFO a read starts with timed out for
        // 30 s once after the leader's kill (answered within seconds by hand).
        { timeout: 60_000, interval: 500 },
      )
      .toBe(true)
      .then(
        () => true,
        () => false,
      );
    // Not ok in time: the last answer says why (differences, damage, violations, or the store still away).
    expect(verified, `/verify never answered ok; the last answer: ${JSON.stringify(report).slice(0, 2000)}`).toBe(true);
    expect(report?.invariantViolations).toEqual([]);
    console.log(`cluster: ${acknowledged.length} writes acknowledged, ${failures.length} refused while the leader (${leader}) was replaced, 0 lost`);

    // The killed server comes back and catches up: the stream has 3 current replicas again.
    await servers[victim]!.start();
    await expect
      .poll(async () => (await jsm.streams.info(`${prefix}_EVENTS`)).cluster?.replicas?.filter((r) => r.current).length, { timeout: 30_000 })
      .toBe(2);
    await gateway.stop();
    await agent.stop();
  });
});
