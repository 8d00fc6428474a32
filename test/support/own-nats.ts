/**
 * A private `nats-server -js` process for tests that stop and start the NATS server itself (the
 * shared server on 4222 is never touched). It listens on a free loopback port with its own
 * JetStream store directory; `stop()` + `start()` bring it back on the same port and store, so
 * clients reconnect to it and the stream survives. With `config`, it runs that configuration file
 * instead (TLS, nkey or JWT authentication: see secure-nats.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { makeTempDir, spawnXenopsd, uniquePrefix, uniqueSuffix, respawn, type Xenopsd } from './xenopsd.js';

export const NATS_SERVER_BIN = process.env.XENOPS_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** A TCP port nobody listens on right now (loopback). */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function exitPromise(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

async function waitListening(port: number, timeoutMs: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`nats-server exited early: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server on port ${port} not listening within ${timeoutMs} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface OwnNatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string;
  readonly running: boolean;
  /** What the server printed since it was last started (its log: errors, violations). */
  readonly output: string;
  /** Starts the server (again) on the same port and store directory; resolves once it listens. */
  start(): Promise<void>;
  /** Stops it with `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface OwnNatsOptions {
  /**
   * The server's configuration file for this port and JetStream store directory (see
   * `natsServerConfig` in secure-nats.ts); absent: `-js` on the command line, no security.
   */
  readonly config?: (port: number, jetStreamDir: string) => string;
}

export async function startOwnNatsServer(opts: OwnNatsOptions = {}): Promise<OwnNatsServer> {
  if (!existsSync(NATS_SERVER_BIN)) throw new Error(`${NATS_SERVER_BIN} not found (set XENOPS_TEST_NATS_SERVER)`);
  const storeDir = await makeTempDir('xnats');
  const port = await freePort();
  const args = ['-js', '-sd', path.join(storeDir, 'js'), '-p', String(port), '-a', '127.0.0.1'];
  if (opts.config) {
    const file = path.join(storeDir, 'nats.conf');
    writeFileSync(file, opts.config(port, path.join(storeDir, 'js')));
    args.splice(0, args.length, '-c', file);
  }
  let proc: ChildProcess | undefined;
  let output = '';
  const self: OwnNatsServer = {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    get output() {
      return output;
    },
    async start() {
      if (self.running) return;
      output = '';
      proc = spawn(NATS_SERVER_BIN, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const p = proc;
      live.add(p);
      p.once('exit', () => live.delete(p));
      p.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
      p.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
      await waitListening(port, 15_000, p, () => output);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const p = proc;
      if (!p) return;
      const done = exitPromise(p);
      if (p.exitCode === null && p.signalCode === null) p.kill(signal);
      const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  };
  await self.start();
  return self;
}

/** An agent + gateway pair on a given NATS URL (not the shared one); same restart helpers as `startNatsCluster`. */
export interface ClusterOn {
  readonly prefix: string;
  readonly hostId: string;
  gateway: Xenopsd;
  agent: Xenopsd;
}

export async function startClusterOn(natsUrl: string): Promise<ClusterOn> {
  const prefix = uniquePrefix('own');
  const hostId = `h-${uniqueSuffix()}`;
  const nats = ['--nats', natsUrl, '--nats-prefix', prefix];
  // mode 'embedded' only means spawnXenopsd adds no --nats of its own: ours is in extraArgs.
  const agent = await spawnXenopsd({ mode: 'embedded', role: 'agent', hostId, extraArgs: ['--socket', 'off', ...nats] });
  const gateway = await spawnXenopsd({ mode: 'embedded', role: 'gateway', hostId, extraArgs: nats });
  return { prefix, hostId, gateway, agent };
}

export { respawn };
