#!/usr/bin/env node
import { ConfigError, parseDaemonArgs, USAGE } from '../daemon/config.js';
import { startDaemon, VERSION, type Daemon } from '../daemon/daemon.js';
import { ExitStatus, startFailureStatus } from '../daemon/exit-status.js';
import { runOneShot } from '../daemon/one-shot.js';
import { restoreFailureOf } from '../daemon/restore.js';
import { consoleIsBuilt } from '@xenops/console';

/** SIGTERM/SIGINT stop every role within 5 s (issue 17): the graceful stop gets this long. */
const STOP_BOUND_MS = 4_500;

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} xenopsd[${process.pid}]: ${line}\n`);
}

async function main(): Promise<number> {
  let config;
  try {
    config = parseDaemonArgs(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`xenopsd: ${e.message}\nTry 'xenopsd --help'.\n`);
      return ExitStatus.CONFIG;
    }
    throw e;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (config === 'version') {
    process.stdout.write(`xenopsd ${VERSION}\n`);
    return 0;
  }
  if (config.oneShot) {
    try {
      await runOneShot({ ...config, oneShot: config.oneShot }, (text) => process.stdout.write(text), log);
      return ExitStatus.OK;
    } catch (e) {
      // `--restore --json` reports on stdout only: its caller (xenops restore) words the failure.
      if (config.oneShot.action === 'restore' && config.oneShot.json) process.stdout.write(`${JSON.stringify({ error: restoreFailureOf(e) })}\n`);
      else log(`${config.oneShot.action} failed: ${(e as Error).message}`);
      return startFailureStatus(e);
    }
  }

  let daemon: Daemon | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string) => {
    if (stopping) return stopping;
    log(`${why}: stopping (finishing in-flight work)`);
    // Whatever NATS does (a drain waits for a server that is gone): out within STOP_BOUND_MS.
    setTimeout(() => {
      log(`not stopped within ${STOP_BOUND_MS / 1000} s (is the store reachable?): exiting now; unfinished work is failed by the next start`);
      process.exit(ExitStatus.FAILED);
    }, STOP_BOUND_MS).unref();
    stopping = (daemon?.close() ?? Promise.resolve()).then(
      () => {
        log('stopped');
        process.exit(0);
      },
      (e: unknown) => {
        log(`error while stopping: ${(e as Error).message}`);
        process.exit(1);
      },
    );
    return stopping;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        log(`${signal} again: exiting now`);
        process.exit(ExitStatus.FAILED);
      }
      void stop(signal);
    });
  }

  try {
    daemon = await startDaemon(config, log, () => void stop('DEBUG.shutdown'));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`xenopsd: ${e.message}\n`);
      return ExitStatus.CONFIG;
    }
    log(`cannot start: ${(e as Error).message}`);
    return startFailureStatus(e);
  }
  const where = [
    daemon.gateway?.tcpAddress ? `http://${formatHost(daemon.gateway.tcpAddress.host)}:${daemon.gateway.tcpAddress.port}` : undefined,
    daemon.gateway?.socketPath ? `unix:${daemon.gateway.socketPath}` : undefined,
  ].filter(Boolean);
  // CPU as well as wall time: on a busy machine the wall time says little about the start's cost.
  const cpu = process.cpuUsage();
  log(`started in ${process.uptime().toFixed(2)} s (${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of CPU)`);
  log(
    `ready: ${config.nats ? 'nats' : 'embedded'} mode, role ${config.role}, host ${config.hostId}` +
      (where.length ? `, serving ${where.join(' and ')}` : ''),
  );
  if (daemon.gateway?.tcpAddress) {
    const url = `http://${formatHost(daemon.gateway.tcpAddress.host)}:${daemon.gateway.tcpAddress.port}/ui`;
    log(consoleIsBuilt() ? `web console: ${url}` : `web console: not built (npm run build), so ${url} answers 404`);
  }
  return -1; // keep running until a signal
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    log(`fatal: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
