/**
 * Picks the transport from the global options and the environment.
 *
 * Precedence (first match wins):
 *  1. `--nats URL`                          JSON-RPC over NATS request/reply
 *  2. `--socket PATH`                       HTTP on a Unix socket
 *  3. `--url URL`                           HTTP on TCP
 *  4. env `XENOPS_SOCKET`                   HTTP on a Unix socket
 *  5. env `XENOPS_URL`                      HTTP on TCP
 *  6. default `http://127.0.0.1:8440`       (xenopsd's default `--listen`)
 * Giving more than one of `--nats`, `--socket`, `--url` is a usage error.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { NatsSecurityOptions } from '@xenops/core';
import { CliError, ExitCode, usageError } from '../errors.js';
import { HttpTransport, NatsTransport } from '@xenops/client';
import { CLASSIC_RPC_SUBJECT } from '@xenops/core';
import { CliTransport } from './cli-transport.js';

export const DEFAULT_URL = 'http://127.0.0.1:8440';

export interface ConnectOptions {
  url?: string | undefined;
  socket?: string | undefined;
  nats?: string | undefined;
  natsSubject?: string | undefined;
  /** Credentials and TLS files of the NATS connection. */
  natsSecurity?: NatsSecurityOptions | undefined;
  tokenFile?: string | undefined;
}

/** xenopsd's default socket: `<data-dir>/xenopsd.sock` (API.md §2.1). */
export function defaultSocketPath(env: NodeJS.ProcessEnv): string {
  const dataDir = env.XENOPS_DATA_DIR || join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'xenops-ts');
  return join(dataDir, 'xenopsd.sock');
}

export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the token file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.USAGE);
  }
  const token = text.split(/\r?\n/, 1)[0]!.trim();
  if (!token) throw new CliError(`the token file ${path} is empty; put the token on its first line`, ExitCode.USAGE);
  return token;
}

export function chooseTransport(o: ConnectOptions, env: NodeJS.ProcessEnv): CliTransport {
  const given = [o.nats && '--nats', o.socket && '--socket', o.url && '--url'].filter(Boolean);
  if (given.length > 1) throw usageError(`${given.join(' and ')} are alternatives; give only one`);
  if (o.nats) {
    const subject = o.natsSubject || env.XENOPS_NATS_SUBJECT || CLASSIC_RPC_SUBJECT;
    const transport = new NatsTransport({ servers: o.nats, subject, security: o.natsSecurity ?? {}, name: 'xenops-cli' });
    return new CliTransport({ kind: 'nats', transport, servers: o.nats });
  }
  const tokenFile = o.tokenFile ?? env.XENOPS_TOKEN_FILE;
  if (o.socket) return http({ socketPath: o.socket });
  if (o.url) return http({ url: checkedUrl(o.url), ...(tokenFile ? { token: readTokenFile(tokenFile) } : {}) });
  if (env.XENOPS_SOCKET) return http({ socketPath: env.XENOPS_SOCKET });
  const url = env.XENOPS_URL || DEFAULT_URL;
  return http({ url: checkedUrl(url), ...(tokenFile ? { token: readTokenFile(tokenFile) } : {}) });
}

function http(target: { url?: string; socketPath?: string; token?: string }): CliTransport {
  return new CliTransport({ kind: 'http', transport: new HttpTransport({ ...target, userAgent: 'xenops-cli' }) });
}

function checkedUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliError(`invalid --url ${JSON.stringify(url)}; expected e.g. http://127.0.0.1:8440`, ExitCode.USAGE);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new CliError(`invalid --url ${u.href}: only http:// and https:// are supported (use --socket for a Unix socket)`, ExitCode.USAGE);
  }
  return url;
}
