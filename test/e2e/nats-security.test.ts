/**
 * NATS security against real private nats-servers configured at test time (issue 11 item 5):
 * TLS with certificates made now (mutual TLS), nkey users and decentralized JWT (`.creds`)
 * authentication, each running a gateway and an agent as two processes end to end; per-role
 * permissions exactly as `xenopsd --nats-permissions` prints them, and a gateway's credentials
 * refused by the server when they try to append to a VM's stream; wrong credentials refused at
 * start with one line and a distinct exit status; the `xenops` CLI over NATS with credentials.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Svcm } from '@nats-io/services';
import { connect, credsAuthenticator, nkeyAuthenticator, PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { natsNames } from '@xenops/store-nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsRolePermissions } from '../../packages/xenopsd/src/daemon/nats-permissions.js';
import { startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { X, waitTask, type RpcClient } from '../support/rpc.js';
import { makeJwtAuthority, makeNkeyUser, makeTestPki, natsServerConfig, type JwtAuthority, type NkeyUser, type TestPki } from '../support/secure-nats.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, makeTempDir, REPO_ROOT, runXenopsdToExit, spawnXenopsd, uniquePrefix, uniqueSuffix, type Xenopsd } from '../support/xenopsd.js';

afterAll(async () => {
  await cleanupAll();
  await Promise.all(servers.map((s) => s.stop()));
});

const servers: OwnNatsServer[] = [];
async function ownServer(config: (port: number, dir: string) => string): Promise<OwnNatsServer> {
  const s = await startOwnNatsServer({ config });
  servers.push(s);
  return s;
}

const XENOPS_BIN = path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js');
const seedOf = (u: NkeyUser) => readFileSync(u.seedFile, 'utf8').trim();

interface Split {
  readonly gateway: Xenopsd;
  readonly agent: Xenopsd;
  readonly prefix: string;
  readonly hostId: string;
}

/** An agent and a gateway as two processes on `url`, each with its own security flags. */
async function startSplit(url: string, agentFlags: string[], gatewayFlags: string[], prefix = uniquePrefix('sec'), hostId = `h-${uniqueSuffix()}`): Promise<Split> {
  const nats = ['--nats', url, '--nats-prefix', prefix];
  const agent = await spawnXenopsd({ mode: 'embedded', role: 'agent', hostId, extraArgs: ['--socket', 'off', ...nats, ...agentFlags] });
  const gateway = await spawnXenopsd({ mode: 'embedded', role: 'gateway', hostId, extraArgs: [...nats, ...gatewayFlags] });
  return { gateway, agent, prefix, hostId };
}

/**
 * add, start (paused), unpause, stat, shutdown, remove; UPDATES.get sees the VM's changes; the
 * JSON-RPC subject of §2.7 answers on `rpc` (a connection allowed to use it).
 */
async function fullLifecycle(c: RpcClient, rpc: NatsConnection): Promise<void> {
  const from = await c.ok<number>('UPDATES.last_id', X({}));
  const id = vmId('sec');
  expect(await c.ok('VM.add', X({ vm: xenopsdVm(id) }))).toBe(id);
  for (const [method, args] of [
    ['VM.start', { id, paused: true }],
    ['VM.unpause', { id }],
  ] as const) {
    const task = await c.ok<string>(method, X(args));
    expect((await waitTask(c, task)).state[0]).toBe('Completed');
  }
  const [, state] = await c.ok<[unknown, { power_state: string }]>('VM.stat', X({ id }));
  expect(state.power_state).toBe('Running');
  const [, vmUpdates] = await c.ok<[unknown[], Array<[string, unknown]>, number]>('UPDATES.get', X({ last_id: from, timeout: 5 }));
  expect(vmUpdates).toContainEqual(['Vm', id]);
  // the streams a gateway writes itself: UPDATES barriers and refreshes, tasks, its host's settings
  await c.ok('UPDATES.inject_barrier', X({ vm_id: id, id: 1 }));
  await c.ok('UPDATES.refresh_vm', X({ id }));
  await c.ok('UPDATES.remove_barrier', X({ id: 1 }));
  const tasks = await c.ok<Array<{ id: string }>>('Task.list', X({}));
  await c.ok('Task.destroy', X({ id: tasks[0]!.id }));
  await c.ok('HOST.send_debug_keys', X({ debug_keys: 'q' }));
  const reply = await rpc.request('org.xen.xapi.xenops.classic', JSON.stringify({ method: 'VM.stat', params: [{ debug_info: 'nats', id }], id: 7 }), { timeout: 10_000 });
  const body = JSON.parse(reply.string()) as { result: [unknown, { power_state: string }]; error: unknown; id: number };
  expect(body.error).toBeNull();
  expect(body.id).toBe(7);
  expect(body.result[1].power_state).toBe('Running');
  const shutdown = await c.ok<string>('VM.shutdown', X({ id, timeout: 10 }));
  expect((await waitTask(c, shutdown)).state[0]).toBe('Completed');
  await c.ok('VM.remove', X({ id }));
  expect(await c.named('VM.stat', X({ id }))).toMatchObject({ ok: false, error: ['Does_not_exist', ['VM', `${id}/config`]] });
}

/**
 * Runs xenopsd until it exits: it must print exactly one line, and exit with `status` within
 * `withinMs` (process start included; a retrying xenopsd would be killed at 15 s and fail here).
 */
async function expectOneLineFailure(args: string[], status: number, pattern: RegExp, withinMs = 8_000): Promise<string> {
  const dataDir = await makeTempDir();
  const t0 = Date.now();
  const r = await runXenopsdToExit(['--data-dir', dataDir, ...args], 15_000);
  const elapsed = Date.now() - t0;
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.code, r.stderr).toBe(status);
  expect(elapsed).toBeLessThan(withinMs);
  return lines[0]!;
}

function runXenops(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [XENOPS_BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('TLS with a CA and certificates made at test time (the server verifies clients too)', () => {
  let pki: TestPki;
  let server: OwnNatsServer;
  let tlsFlags: string[];

  beforeAll(async () => {
    pki = await makeTestPki();
    server = await ownServer((port, dir) => natsServerConfig(port, dir, { tls: { pki, verifyClients: true } }));
    tlsFlags = ['--nats-tls-ca', pki.caFile, '--nats-tls-cert', pki.clientCert, '--nats-tls-key', pki.clientKey];
  });

  it('a gateway and an agent run a full lifecycle over TLS, with nats:// and tls:// URLs', async () => {
    const split = await startSplit(server.url, tlsFlags, tlsFlags);
    const agent2 = await spawnXenopsd({
      mode: 'embedded',
      role: 'agent',
      hostId: `h-${uniqueSuffix()}`,
      extraArgs: ['--socket', 'off', '--nats', `tls://127.0.0.1:${server.port}`, '--nats-prefix', split.prefix, ...tlsFlags],
    });
    expect(agent2.stderr).toMatch(/ready: nats mode, role agent/);
    const rpc = await connect({ servers: server.url, tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey } });
    try {
      expect(rpc.info?.tls_required).toBe(true);
      await fullLifecycle(split.gateway.client(), rpc);
    } finally {
      await rpc.close();
    }
  });

  it('without the CA, the server certificate is refused: one line, exit status 3', async () => {
    const line = await expectOneLineFailure(
      ['--nats', server.url, '--role', 'agent', '--socket', 'off', '--nats-tls-cert', pki.clientCert, '--nats-tls-key', pki.clientKey],
      3,
      /cannot start: TLS with NATS at nats:\/\/127\.0\.0\.1:\d+ failed \(server certificate checked against the system CAs.*\): unable to verify the first certificate/,
    );
    expect(line).toContain('--nats-tls-ca');
  });

  it('with a CA that did not sign the server certificate: one line, exit status 3', async () => {
    await expectOneLineFailure(
      ['--nats', server.url, '--role', 'agent', '--socket', 'off', '--nats-tls-ca', pki.otherCaFile, '--nats-tls-cert', pki.clientCert, '--nats-tls-key', pki.clientKey],
      3,
      new RegExp(`TLS with NATS at .* failed \\(server certificate checked against the CA in ${pki.otherCaFile.replace(/[.]/g, '\\.')}`),
    );
  });

  it('without a client certificate the server refuses the connection: one line, exit status 3', async () => {
    // With TLS 1.3 the client learns of the refusal only after its handshake: the connection
    // attempt runs into its 5 s bound, then the server's INFO says why.
    await expectOneLineFailure(
      ['--nats', server.url, '--role', 'agent', '--socket', 'off', '--nats-tls-ca', pki.caFile],
      3,
      /cannot start: TLS with NATS at nats:\/\/127\.0\.0\.1:\d+ failed: the server wants a TLS client certificate and none was given \(give --nats-tls-cert and --nats-tls-key\)$/,
      12_000,
    );
  });

  it('a missing CA file is named as such: one line, exit status 3', async () => {
    await expectOneLineFailure(
      ['--nats', server.url, '--role', 'agent', '--socket', 'off', '--nats-tls-ca', '/nonexistent/ca.pem'],
      3,
      /cannot start: cannot read the NATS TLS CA file \/nonexistent\/ca\.pem: ENOENT/,
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('nkey users, each role with exactly the permissions xenopsd --nats-permissions prints', () => {
  const prefix = uniquePrefix('perm');
  /** A prefix whose resources nobody creates. */
  const unsetPrefix = uniquePrefix('unset');
  const hostId = `h-${uniqueSuffix()}`;
  let admin: NkeyUser, gatewayUser: NkeyUser, agentUser: NkeyUser, clientUser: NkeyUser, unsetAgentUser: NkeyUser;
  let server: OwnNatsServer;
  let split: Split;
  let adminNc: NatsConnection;
  const nkey = (u: NkeyUser) => ['--nats-nkey', u.seedFile];

  beforeAll(async () => {
    [admin, gatewayUser, agentUser, clientUser, unsetAgentUser] = await Promise.all(
      ['admin', 'gateway', 'agent', 'client', 'unset-agent'].map((t) => makeNkeyUser(t)),
    );
    const printed = async (role: string, p = prefix) => {
      const r = await runXenopsdToExit(['--nats-permissions', role, '--nats-prefix', p, '--host-id', hostId]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const [gatewayBlock, agentBlock, unsetAgentBlock] = await Promise.all([printed('gateway'), printed('agent'), printed('agent', unsetPrefix)]);
    server = await ownServer((port, dir) =>
      natsServerConfig(port, dir, {
        nkeyUsers: [
          { nkey: admin.publicKey },
          { nkey: gatewayUser.publicKey, permissions: gatewayBlock },
          { nkey: agentUser.publicKey, permissions: agentBlock },
          { nkey: unsetAgentUser.publicKey, permissions: unsetAgentBlock },
          // a JSON-RPC client (§2.7): requests on the subject, replies on its inbox
          { nkey: clientUser.publicKey, permissions: { publish: ['org.xen.xapi.xenops.classic'], subscribe: ['_INBOX.>'] } },
        ],
      }),
    );
    // The roles may not create anything: an admin creates the prefix's resources once.
    const setup = await runXenopsdToExit(['--nats-setup', '--nats', server.url, '--nats-prefix', prefix, ...nkey(admin)]);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout).toContain(`created the stream ${prefix}_EVENTS (subjects ${prefix}.ev.>, event subject layout 2, 1 replica(s))`);
    expect(setup.stdout).toContain(`created the KV bucket ${prefix}_snapshots`);
    expect(setup.stdout).toContain(`created the object store ${prefix}_snapshots`);
    expect(setup.stdout).toContain(`created the KV bucket ${prefix}_hosts`);
    expect(setup.stdout).toContain(`created the KV bucket ${prefix}_leases`);
    const again = await runXenopsdToExit(['--nats-setup', '--nats', server.url, '--nats-prefix', prefix, ...nkey(admin)]);
    expect(again.stdout).toContain(`found the stream ${prefix}_EVENTS`);
    split = await startSplit(server.url, nkey(agentUser), nkey(gatewayUser), prefix, hostId);
    adminNc = await connect({ servers: server.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(seedOf(admin))) });
  });

  afterAll(async () => {
    await adminNc?.close();
  });

  async function head(): Promise<number> {
    return (await (await jetstreamManager(adminNc)).streams.info(natsNames(prefix).stream)).state.last_seq;
  }

  it('a full lifecycle passes with the gateway and the agent each on exactly its set', async () => {
    const rpc = await connect({ servers: server.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(seedOf(clientUser))) });
    try {
      await fullLifecycle(split.gateway.client(), rpc);
    } finally {
      await rpc.close();
    }
    // Both roles answer NATS-native discovery (the micro protocol) on exactly their set.
    const found: string[] = [];
    for await (const s of await new Svcm(adminNc).client().ping('xenopsd')) if (s.metadata?.prefix === prefix) found.push(s.metadata.role!);
    expect(found.sort()).toEqual(['agent', 'gateway']);
    // The agent registered its host and the gateway reads the registry and holds the reaper's lease (§9.7, issue 14).
    const c = split.gateway.client();
    const hosts = await c.ok<Array<{ id: string; state: string }>>('HOST.list', X({}));
    expect(hosts.map((h) => [h.id, h.state])).toEqual([[hostId, 'Up']]);
    const diag = JSON.parse(await c.ok<string>('get_diagnostics', X({}))) as { leases: string[] };
    expect(diag.leases).toEqual(['task-reaper']);
    // The server refused nothing the roles did.
    expect(server.output).not.toMatch(/Violation/);
  });

  it("the gateway's credentials cannot append to a VM's stream: the server refuses the publish, nothing is appended", async () => {
    const c = split.gateway.client();
    const id = vmId('guarded');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    const before = await head();
    const names = natsNames(prefix);
    const nc = await connect({
      servers: server.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(seedOf(gatewayUser))),
      inboxPrefix: names.inboxPrefix('gateway'),
    });
    try {
      const subject = names.eventSubject(`vm/${id}`);
      expect(subject).toBe(`${prefix}.ev.vm.${id}`);
      const err = await jetstream(nc)
        .publish(subject, new Uint8Array([1, 2, 3]))
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(err).toBeInstanceOf(Error);
      expect(err!.cause).toBeInstanceOf(PermissionViolationError);
      expect((err!.cause as PermissionViolationError).subject).toBe(subject);
      // the one-token spelling of layout 1 is no way around it
      const alias = `${prefix}.ev.vm%2F${id}`;
      const aliasErr = await jetstream(nc)
        .publish(alias, new Uint8Array([1]))
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(aliasErr?.cause).toBeInstanceOf(PermissionViolationError);
      // the same connection may publish where its set allows (a change record, outside the log)
      nc.publish(`xenops.updates.vm.${id}`, '{}');
      await nc.flush();
    } finally {
      await nc.close();
    }
    expect(await head()).toBe(before);
    expect(server.output).not.toMatch(/Publish Violation .*Subject "xenops\.updates\./);
    expect(server.output).toMatch(new RegExp(`Publish Violation .*Subject "${prefix}\\.ev\\.vm\\.${id}"`));
  });

  it("the xenops CLI talks to the gateway over NATS with an nkey", async () => {
    const r = await runXenops(['--nats', server.url, '--nats-nkey', clientUser.seedFile, 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(r.stdout))).toBe(true);
    const refused = await runXenops(['--nats', server.url, 'list']);
    expect(refused.code).toBe(8);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/refused no credentials \(none\): Authorization Violation/);
  });

  it('wrong credentials at start: one line naming the URL, the method and the reason, exit status 3', async () => {
    const stranger = await makeNkeyUser('stranger');
    const base = ['--nats', server.url, '--nats-prefix', prefix, '--role', 'agent', '--socket', 'off', '--host-id', hostId];
    // a seed the server knows nothing of (an unknown user)
    await expectOneLineFailure(
      [...base, '--nats-nkey', stranger.seedFile],
      3,
      new RegExp(`cannot start: NATS at ${server.url} refused the nkey seed in ${stranger.seedFile} \\(nkey\\): Authorization Violation$`),
    );
    // a damaged seed (right shape, wrong checksum)
    const damaged = path.join(await makeTempDir('xnk'), 'damaged.nk');
    writeFileSync(damaged, `${seedOf(agentUser).slice(0, -4)}AAAA\n`);
    await expectOneLineFailure(
      [...base, '--nats-nkey', damaged],
      3,
      new RegExp(`cannot start: the nkey file ${damaged} holds a damaged nkey seed \\(nkeys: invalid checksum\\)$`),
    );
    // no credentials at all
    await expectOneLineFailure(base, 3, /refused no credentials \(none\): Authorization Violation \(it wants credentials: give --nats-creds or --nats-nkey\)$/);
    // a file that holds no seed
    await expectOneLineFailure([...base, '--nats-nkey', notASecurityFile()], 3, /cannot start: no user nkey seed \(a line starting with SU\) in the nkey file/);
  });

  it('a role on a prefix nobody set up: one line saying what is missing and how to create it, exit status 3', async () => {
    await expectOneLineFailure(
      ['--nats', server.url, '--nats-prefix', unsetPrefix, '--role', 'agent', '--socket', 'off', '--host-id', hostId, '--nats-nkey', unsetAgentUser.seedFile],
      3,
      new RegExp(
        `cannot start: cannot open the stream ${unsetPrefix}_EVENTS \\(prefix ${unsetPrefix}\\) at ${server.url}: these NATS credentials may not publish to ` +
          `\\$JS\\.API\\.STREAM\\.CREATE\\.${unsetPrefix}_EVENTS \\(permissions violation\\): it does not exist and these credentials may not create it; ` +
          `create the prefix's resources first with 'xenopsd --nats-setup --nats ${server.url} --nats-prefix ${unsetPrefix}' and credentials allowed to$`,
      ),
    );
  });

  // Last: it stops the agent.
  it('with no agent, a gateway on its set fails VM.add at once with a typed error and appends nothing', async () => {
    await split.agent.stop();
    const before = await head();
    const t0 = Date.now();
    const reply = await split.gateway.client().named('VM.add', X({ vm: xenopsdVm(vmId('orphan')) }));
    expect(Date.now() - t0).toBeLessThan(15_000);
    // No agent at all: neither the gateway's host's nor any other may decide it (and the gateway never writes a VM's stream).
    expect(reply).toMatchObject({ ok: false, error: ['Internal_error', `no agent for host ${hostId}`] });
    expect(await head()).toBe(before);
    // the gateway is still healthy
    expect(await split.gateway.client().ok('UPDATES.last_id', X({}))).toBe(before);
  });
});

/** A file that exists and holds neither an nkey seed nor creds. */
function notASecurityFile(): string {
  return path.join(REPO_ROOT, 'package.json');
}

// ---------------------------------------------------------------------------------------------

describe('decentralized JWT authentication with .creds files (resolver MEMORY)', () => {
  let authority: JwtAuthority;
  let server: OwnNatsServer;
  const prefix = uniquePrefix('jwt');
  const hostId = `h-${uniqueSuffix()}`;

  beforeAll(async () => {
    authority = await makeJwtAuthority();
    server = await ownServer((port, dir) => natsServerConfig(port, dir, { jwt: authority }));
  });

  it('a gateway and an agent with role-scoped user JWTs run a full lifecycle', async () => {
    const admin = await authority.userCreds('admin');
    const setup = await runXenopsdToExit(['--nats-setup', '--nats', server.url, '--nats-prefix', prefix, '--nats-creds', admin]);
    expect(setup.code, setup.stderr).toBe(0);
    const roleCreds = (role: 'gateway' | 'agent') => authority.userCreds(role, natsRolePermissions({ role, prefix, hostId }));
    const [gatewayCreds, agentCreds] = await Promise.all([roleCreds('gateway'), roleCreds('agent')]);
    const split = await startSplit(server.url, ['--nats-creds', agentCreds], ['--nats-creds', gatewayCreds], prefix, hostId);
    const client = await authority.userCreds('client', { publish: ['org.xen.xapi.xenops.classic'], subscribe: ['_INBOX.>'] });
    const rpc = await connect({ servers: server.url, authenticator: credsAuthenticator(readFileSync(client)) });
    try {
      await fullLifecycle(split.gateway.client(), rpc);
    } finally {
      await rpc.close();
    }
    expect(server.output).not.toMatch(/Violation/);
    const cli = await runXenops(['--nats', server.url, '--nats-creds', client, 'list', '--json']);
    expect(cli.code, cli.stderr).toBe(0);
  });

  it('expired creds: one line saying the JWT expired, exit status 3', async () => {
    const expired = await authority.userCreds('expired', undefined, { expiresInSec: -60 });
    await expectOneLineFailure(
      ['--nats', server.url, '--nats-prefix', prefix, '--role', 'agent', '--socket', 'off', '--nats-creds', expired],
      3,
      new RegExp(`refused the creds file ${expired} \\(creds\\): Authorization Violation \\(the user JWT in ${expired} expired at \\d{4}-`),
    );
  });

  it('creds the server cannot trust (signed by an unknown account): one line, exit status 3', async () => {
    const untrusted = await authority.userCreds('untrusted', undefined, { signedByOtherAccount: true });
    await expectOneLineFailure(
      ['--nats', server.url, '--nats-prefix', prefix, '--role', 'agent', '--socket', 'off', '--nats-creds', untrusted],
      3,
      new RegExp(`refused the creds file ${untrusted} \\(creds\\): Authorization Violation$`),
    );
  });

  it('a file that is not a creds file: one line, exit status 3', async () => {
    await expectOneLineFailure(
      ['--nats', server.url, '--nats-prefix', prefix, '--role', 'agent', '--socket', 'off', '--nats-creds', notASecurityFile()],
      3,
      /cannot start: the creds file .* holds no user JWT and seed/,
    );
  });
});

describe('an unreachable NATS server', () => {
  it('one line and exit status 4', async () => {
    const { freePort } = await import('../support/own-nats.js');
    const port = await freePort();
    await expectOneLineFailure(['--nats', `nats://127.0.0.1:${port}`, '--role', 'agent', '--socket', 'off'], 4, new RegExp(`cannot start: cannot reach NATS at nats://127\\.0\\.0\\.1:${port}: connection refused`));
  });
});
