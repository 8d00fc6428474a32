/**
 * Spawns real `xenopsd` processes (the built binary) for the end-to-end tests, and makes sure none
 * outlives its test file: every process is tracked and killed by `stopAll()` (call it from
 * `afterAll`) and, as a last resort, when the test worker exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcClient, type Codec, type Endpoint } from './rpc.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const XENOPSD_BIN = path.join(REPO_ROOT, 'packages/xenopsd/dist/bin/xenopsd.js');
export const NATS_URL = process.env.XENOPS_TEST_NATS ?? 'nats://127.0.0.1:4222';
const READY_TIMEOUT_MS = 20_000;

export interface SpawnOptions {
  mode: 'embedded' | 'nats';
  role?: 'gateway' | 'agent' | 'all';
  dataDir?: string;
  hostId?: string;
  natsPrefix?: string;
  /** Extra flags; a `--listen` or `--socket` here replaces the default one. */
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Working directory of the process (relative paths it writes, e.g. `Local` suspend images, land here). */
  cwd?: string;
}

export interface Xenopsd {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly dataDir: string;
  readonly hostId: string;
  readonly natsPrefix: string | undefined;
  /** `http://127.0.0.1:<port>` when the process serves TCP. */
  readonly url: string | undefined;
  /** The Unix socket path when the process serves one. */
  readonly socketPath: string | undefined;
  /** Everything the process wrote to stderr so far. */
  readonly stderr: string;
  readonly options: SpawnOptions;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL, resolves when the process is gone. */
  kill9(): Promise<void>;
  /** Resolves with the exit code once the process has exited on its own. */
  exited(): Promise<number | null>;
  client(codec?: Codec, token?: string): RpcClient;
  socketClient(codec?: Codec): RpcClient;
}

const live = new Set<ChildProcess>();
const createdPrefixes = new Set<string>();
const tempDirs = new Set<string>();

process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export async function makeTempDir(tag = 'xe2e'): Promise<string> {
  // Short base: Unix socket paths are limited to ~107 bytes.
  const base = existsSync('/tmp') ? '/tmp' : os.tmpdir();
  const d = await mkdtemp(path.join(base, `${tag}-`));
  tempDirs.add(d);
  return d;
}

export const uniqueSuffix = (): string => `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
export const uniquePrefix = (tag = 'e2e'): string => `${tag}_${uniqueSuffix()}`;

function exitPromise(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/**
 * Runs xenopsd to completion (for start-up failures) and returns exit code and stderr.
 */
export async function runXenopsdToExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const proc = spawn(process.execPath, [XENOPSD_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let stderr = '';
  let stdout = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await exitPromise(proc);
  clearTimeout(timer);
  live.delete(proc);
  return { code, stderr, stdout };
}

export async function spawnXenopsd(options: SpawnOptions): Promise<Xenopsd> {
  const dataDir = options.dataDir ?? (await makeTempDir());
  const hostId = options.hostId ?? 'e2e-host';
  const role = options.role ?? 'all';
  const extra = options.extraArgs ?? [];
  const args = [XENOPSD_BIN, '--data-dir', dataDir, '--host-id', hostId, '--role', role];
  if (!extra.includes('--listen')) args.push('--listen', '127.0.0.1:0');
  if (!extra.includes('--socket')) args.push('--socket', path.join(dataDir, 'xenopsd.sock'));
  let natsPrefix: string | undefined;
  if (options.mode === 'nats') {
    natsPrefix = options.natsPrefix ?? uniquePrefix();
    createdPrefixes.add(natsPrefix);
    args.push('--nats', NATS_URL, '--nats-prefix', natsPrefix);
  }
  args.push(...extra);

  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...(options.env ?? {}) },
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let stderr = '';
  proc.stderr!.setEncoding('utf8');

  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`xenopsd (${args.slice(1).join(' ')}) not ready within ${READY_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, READY_TIMEOUT_MS);
    const onData = (c: string) => {
      stderr += c;
      const line = stderr.split('\n').find((l) => l.includes('ready:'));
      if (line) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        proc.stderr!.off('data', onData);
        resolve(line);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      // Let the last stderr chunk arrive.
      setImmediate(() =>
        reject(new Error(`xenopsd (${args.slice(1).join(' ')}) exited before ready (code ${code}, signal ${signal}); stderr:\n${stderr}`)),
      );
    };
    proc.stderr!.on('data', onData);
    proc.once('exit', onExit);
  });
  proc.stderr!.on('data', (c: string) => (stderr += c));

  const http = /serving http:\/\/(\[[^\]]+\]|[^\s:]+):(\d+)/.exec(ready);
  const unix = /unix:(\S+)/.exec(ready);
  const url = http ? `http://${http[1]}:${http[2]}` : undefined;
  const socketPath = unix ? unix[1] : undefined;
  if (url) {
    const prefixArg = extra.indexOf('--nats-prefix');
    servingLogs.set(proc, { url, log: natsPrefix ?? (prefixArg >= 0 ? extra[prefixArg + 1] : undefined) ?? dataDir });
    proc.once('exit', () => servingLogs.delete(proc));
  }

  const self: Xenopsd = {
    proc,
    pid: proc.pid!,
    dataDir,
    hostId,
    natsPrefix,
    url,
    socketPath,
    get stderr() {
      return stderr;
    },
    options: { ...options, dataDir, hostId, ...(natsPrefix ? { natsPrefix } : {}) },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const done = exitPromise(proc);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await done;
      clearTimeout(timer);
      return code;
    },
    async kill9() {
      const done = exitPromise(proc);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await done;
    },
    exited: () => exitPromise(proc),
    client(codec: Codec = 'json1', token?: string) {
      if (!url) throw new Error('this xenopsd serves no TCP endpoint');
      const ep: Endpoint = { url, ...(token ? { token } : {}) };
      return new RpcClient(ep, codec);
    },
    socketClient(codec: Codec = 'json1') {
      if (!socketPath) throw new Error('this xenopsd serves no Unix socket');
      return new RpcClient({ socketPath }, codec);
    },
  };
  return self;
}

/** Restarts a stopped process with the same options (same data dir, host id, prefix). */
export function respawn(x: Xenopsd): Promise<Xenopsd> {
  return spawnXenopsd(x.options);
}

/** Kills every process still alive (SIGKILL) and removes the temp dirs. Call from `afterAll`. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...live].map(async (p) => {
      const done = exitPromise(p);
      try {
        p.kill('SIGKILL');
      } catch {
        /* gone */
      }
      await done;
    }),
  );
  // Retried: a nats-server of the test (test/support/own-nats.ts) may still be writing its store
  // under one of them (a file appears while the directory is removed: ENOTEMPTY).
  await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 })));
  tempDirs.clear();
}

// ---------------------------------------------------------------------------------------------
// NATS

/** Fails with a clear message if the NATS server does not accept TCP connections. */
export async function assertNatsReachable(): Promise<void> {
  const u = new URL(NATS_URL.replace(/^nats:/, 'http:'));
  const host = u.hostname;
  const port = Number(u.port || 4222);
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`NATS server at ${NATS_URL} is unreachable (connect timed out). Start nats-server -js or set XENOPS_TEST_NATS.`));
    }, 3000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.end();
      resolve();
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`NATS server at ${NATS_URL} is unreachable: ${e.message}. Start nats-server -js or set XENOPS_TEST_NATS.`));
    });
  });
}

export interface NatsCluster {
  prefix: string;
  hostId: string;
  gateway: Xenopsd;
  agent: Xenopsd;
  client(codec?: Codec): RpcClient;
  restartGateway(signal?: NodeJS.Signals): Promise<void>;
  restartAgent(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

/** Starts an agent and a gateway as two processes sharing one NATS prefix and host id. */
export async function startNatsCluster(opts: { prefix?: string; hostId?: string; agentArgs?: string[] } = {}): Promise<NatsCluster> {
  await assertNatsReachable();
  const prefix = opts.prefix ?? uniquePrefix();
  const hostId = opts.hostId ?? `h-${uniqueSuffix()}`;
  createdPrefixes.add(prefix);
  const agent = await spawnXenopsd({
    mode: 'nats',
    role: 'agent',
    natsPrefix: prefix,
    hostId,
    extraArgs: ['--socket', 'off', ...(opts.agentArgs ?? [])],
  });
  const gateway = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId });
  const cluster: NatsCluster = {
    prefix,
    hostId,
    gateway,
    agent,
    client: (codec: Codec = 'json1') => cluster.gateway.client(codec),
    async restartGateway(signal: NodeJS.Signals = 'SIGTERM') {
      if (signal === 'SIGKILL') await cluster.gateway.kill9();
      else await cluster.gateway.stop(signal);
      cluster.gateway = await respawn(cluster.gateway);
    },
    async restartAgent(signal: NodeJS.Signals = 'SIGTERM') {
      if (signal === 'SIGKILL') await cluster.agent.kill9();
      else await cluster.agent.stop(signal);
      cluster.agent = await respawn(cluster.agent);
    },
    async stop() {
      await Promise.all([cluster.gateway.stop(), cluster.agent.stop()]);
    },
  };
  return cluster;
}

/** Registers a prefix for `deleteNatsResources` (done automatically by `startNatsCluster`). */
export function trackNatsPrefix(prefix: string): void {
  createdPrefixes.add(prefix);
}

/**
 * Deletes the JetStream stream, KV bucket and object store of every prefix this worker created
 * (`<PREFIX>_EVENTS`, `KV_<prefix>_snapshots`, `OBJ_<prefix>_snapshots`, and the host registry's and
 * leases' `KV_<prefix>_hosts`, `KV_<prefix>_leases`). Best effort: a failure
 * is reported, not thrown.
 */
export async function deleteNatsResources(): Promise<void> {
  if (createdPrefixes.size === 0) return;
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: NATS_URL, timeout: 3000 });
  try {
    const jsm = await jetstreamManager(nc);
    const names = new Set<string>();
    for await (const si of jsm.streams.list()) names.add(si.config.name);
    for (const prefix of createdPrefixes) {
      const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '_');
      for (const stream of [`${safe}_EVENTS`, `KV_${safe}_snapshots`, `OBJ_${safe}_snapshots`, `KV_${safe}_hosts`, `KV_${safe}_leases`]) {
        if (!names.has(stream)) continue;
        try {
          await jsm.streams.delete(stream);
        } catch (e) {
          process.stderr.write(`e2e: could not delete NATS stream ${stream}: ${(e as Error).message}\n`);
        }
      }
    }
    createdPrefixes.clear();
  } finally {
    await nc.close();
  }
}

/** Processes that serve HTTP, and the log each reads (a NATS prefix or a data dir). */
const servingLogs = new Map<ChildProcess, { readonly url: string; readonly log: string }>();

/**
 * The invariant monitor over every log a test file's services still serve (issue 14 item 5): no VM
 * ever had two domains or belonged to two hosts. A service that does not answer GET /verify (it
 * is gone, behind a token, or its store is down) has nothing to say; a violation fails the file.
 */
export async function checkInvariantsOfLiveServices(): Promise<void> {
  const checked = new Set<string>();
  const violations: string[] = [];
  for (const { url, log } of servingLogs.values()) {
    if (checked.has(log)) continue;
    try {
      const r = await fetch(`${url}/verify`, { signal: AbortSignal.timeout(30_000) });
      if (!r.ok) continue;
      const report = (await r.json()) as { invariantViolations?: unknown[] };
      checked.add(log);
      for (const v of report.invariantViolations ?? []) violations.push(`${log}: ${JSON.stringify(v)}`);
    } catch {
      /* not answering: nothing to check */
    }
  }
  if (violations.length > 0) throw new Error(`invariant monitor: ${violations.length} violation(s):\n${violations.slice(0, 10).join('\n')}`);
}

/** `afterAll` body for files that use NATS: check the invariants, kill processes, then drop their NATS resources. */
export async function cleanupAll(): Promise<void> {
  const invariants = await checkInvariantsOfLiveServices().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  await stopAll();
  await deleteNatsResources().catch((e: unknown) => process.stderr.write(`e2e: NATS cleanup failed: ${(e as Error).message}\n`));
  if (invariants) throw invariants;
}
