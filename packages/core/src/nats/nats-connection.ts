/**
 * Connecting to NATS with the credentials and TLS files of the command line, shared by xenopsd's
 * stores (@xenops/store-nats) and the clients' `--nats` transport. A failure says, in one line,
 * which URL, which method (creds, nkey, TLS, none) and the server's or TLS library's reason, as a
 * typed error: {@link NatsAuthenticationError} or {@link NatsUnreachableError}.
 *
 * Core depends on no NATS library: the caller passes the nats.js transport module
 * (`@nats-io/transport-node`), which it loads itself (the CLI only when `--nats` is used).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { StoreUnavailableError } from '../store/event-log.js';
import { NatsAuthenticationError, NatsUnreachableError } from './nats-errors.js';

/** The parts of nats.js's transport module (`@nats-io/transport-node`) a connection needs. */
export interface NatsClientModule<C> {
  connect(options: object): Promise<C>;
  credsAuthenticator(creds: Uint8Array): unknown;
  nkeyAuthenticator(seed: Uint8Array): unknown;
  readonly nkeys: { fromSeed(seed: Uint8Array): unknown };
}

/** Connection options, as nats.js takes them (`NodeConnectionOptions`). */
type ConnectionOptions = { readonly timeout?: number; readonly [option: string]: unknown };

/** The security files of a NATS connection (flags `--nats-creds`, `--nats-nkey`, `--nats-tls-*`). */
export interface NatsSecurityOptions {
  /** A `.creds` file: the user JWT and its nkey seed (decentralized JWT authentication). */
  readonly credsFile?: string;
  /** A file holding a user nkey seed (`SU...`). */
  readonly nkeyFile?: string;
  /** CA certificate(s) to verify the server's TLS certificate with (instead of the system's). */
  readonly tlsCaFile?: string;
  /** Client certificate and key, for servers that verify clients (`tls { verify: true }`). */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
}

/** What this connection authenticates with, in words, for error messages. */
function describeNatsSecurity(o: NatsSecurityOptions): string {
  const who = o.credsFile ? `the creds file ${o.credsFile}` : o.nkeyFile ? `the nkey seed in ${o.nkeyFile}` : 'no credentials';
  const tls = o.tlsCertFile ? `, client certificate ${o.tlsCertFile}` : '';
  return who + tls;
}

/** Connection options carrying the credentials and TLS settings (files read now). */
async function natsSecurityOptions(nats: NatsClientModule<unknown>, o: NatsSecurityOptions): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const auths: unknown[] = [];
  if (o.credsFile) {
    const creds = await readSecurityFile('creds file', o.credsFile);
    const text = creds.toString('utf8');
    const seed = /-----BEGIN USER NKEY SEED-----\s*(\S+)/.exec(text)?.[1];
    if (!/-----BEGIN NATS USER JWT-----\s*\S+/.test(text) || !seed) {
      throw new NatsAuthenticationError(`the creds file ${o.credsFile} holds no user JWT and seed (expected the -----BEGIN NATS USER JWT----- and -----BEGIN USER NKEY SEED----- blocks)`);
    }
    checkSeed(nats, seed, `the creds file ${o.credsFile}`);
    auths.push(nats.credsAuthenticator(creds));
  }
  if (o.nkeyFile) {
    const seed = (await readSecurityFile('nkey file', o.nkeyFile))
      .toString('utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l.startsWith('SU'));
    if (!seed) throw new NatsAuthenticationError(`no user nkey seed (a line starting with SU) in the nkey file ${o.nkeyFile}`);
    checkSeed(nats, seed, `the nkey file ${o.nkeyFile}`);
    auths.push(nats.nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (auths.length > 0) out.authenticator = auths.length === 1 ? auths[0]! : auths;
  if (o.tlsCaFile || o.tlsCertFile || o.tlsKeyFile) {
    if (!o.tlsCertFile !== !o.tlsKeyFile) {
      throw new NatsAuthenticationError('a TLS client certificate needs both --nats-tls-cert and --nats-tls-key');
    }
    // Read here so that a missing file is named as such, not as a TLS failure.
    for (const [what, file] of [
      ['TLS CA file', o.tlsCaFile],
      ['TLS certificate file', o.tlsCertFile],
      ['TLS key file', o.tlsKeyFile],
    ] as const) {
      if (file) await readSecurityFile(what, file);
    }
    out.tls = {
      ...(o.tlsCaFile ? { caFile: o.tlsCaFile } : {}),
      ...(o.tlsCertFile ? { certFile: o.tlsCertFile, keyFile: o.tlsKeyFile! } : {}),
    };
  }
  return out;
}

/** A damaged seed would otherwise surface as an odd error of the connection. */
function checkSeed(nats: NatsClientModule<unknown>, seed: string, where: string): void {
  try {
    nats.nkeys.fromSeed(new TextEncoder().encode(seed));
  } catch (err) {
    throw new NatsAuthenticationError(`${where} holds a damaged nkey seed (${(err as Error).message})`, { cause: err });
  }
}

async function readSecurityFile(what: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new NatsAuthenticationError(`cannot read the NATS ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * How long the first connection may take: a NATS server sends its INFO at once, so this only
 * bounds the wait for a server that never completes the handshake (e.g. one that refuses the
 * missing TLS client certificate after a TLS 1.3 handshake, which the client notices only then).
 */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Connects once to `servers` (comma-separated URLs): an authentication or TLS failure, or no
 * server reachable, rejects at once with a typed error instead of retrying. `options` adds to or
 * overrides the connection options (reconnect policy, name, inbox prefix...).
 */
export async function connectNatsWith<C>(
  nats: NatsClientModule<C>,
  servers: string,
  security: NatsSecurityOptions,
  options: ConnectionOptions = {},
): Promise<C> {
  const list = servers
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const securityOpts = await natsSecurityOptions(nats, security);
  try {
    // waitOnFirstConnect stays false: the first attempt at every server decides.
    return await nats.connect({ timeout: CONNECT_TIMEOUT_MS, ...options, ...securityOpts, servers: list, waitOnFirstConnect: false });
  } catch (err) {
    if (isNatsError(err, 'TimeoutError')) throw await diagnoseTimeout(err, list, servers, security, options.timeout ?? CONNECT_TIMEOUT_MS);
    throw classifyConnectError(err, servers, security);
  }
}

/**
 * A connection that timed out: when a server asks for TLS client certificates (`tls_verify` in
 * the INFO it sends in clear before TLS) and none was given, that is why.
 */
async function diagnoseTimeout(err: Error, urls: string[], servers: string, security: NatsSecurityOptions, ms: number): Promise<StoreUnavailableError> {
  if (!security.tlsCertFile) {
    const infos = await Promise.all(urls.map((u) => serverInfo(u, 2_000)));
    if (infos.some((i) => i?.tls_verify === true)) {
      return new NatsAuthenticationError(
        `TLS with NATS at ${servers} failed: the server wants a TLS client certificate and none was given (give --nats-tls-cert and --nats-tls-key)`,
        { cause: err },
      );
    }
  }
  return new NatsUnreachableError(`NATS at ${servers} did not complete the connection within ${ms / 1000} s`, { cause: err });
}

/** The INFO a NATS server greets with, or undefined (not a NATS server, not reachable). */
function serverInfo(url: string, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  let host: string;
  let port: number;
  try {
    const u = new URL(url.includes('://') ? url : `nats://${url}`);
    host = u.hostname.replace(/^\[|\]$/g, '');
    port = Number(u.port || 4222);
  } catch {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    let text = '';
    const socket = tcpConnect({ host, port });
    const done = (info: Record<string, unknown> | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(info);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\r\n');
      if (end < 0) return;
      const m = /^INFO\s+(\{.*\})\s*$/.exec(text.slice(0, end));
      try {
        done(m ? (JSON.parse(m[1]!) as Record<string, unknown>) : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}

/** Turns a connect failure into one line naming the URL, the method and the reason. */
function classifyConnectError(err: unknown, servers: string, security: NatsSecurityOptions): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  if (isNatsError(err, 'AuthorizationError') || isNatsError(err, 'UserAuthenticationExpiredError')) {
    const method = security.credsFile ? 'creds' : security.nkeyFile ? 'nkey' : 'none';
    const hint = method === 'none' ? ' (it wants credentials: give --nats-creds or --nats-nkey)' : expiryHint(security);
    return new NatsAuthenticationError(`NATS at ${servers} refused ${describeNatsSecurity(security)} (${method}): ${reason}${hint}`, { cause: err });
  }
  if (isTlsFailure(err)) {
    const ca = security.tlsCaFile ? `the CA in ${security.tlsCaFile}` : 'the system CAs (give --nats-tls-ca FILE for a private CA)';
    return new NatsAuthenticationError(
      `TLS with NATS at ${servers} failed (server certificate checked against ${ca}; ${describeNatsSecurity(security)}): ${reason}`,
      { cause: err },
    );
  }
  if (isNatsError(err, 'ConnectionError') || isNetworkFailure(err)) {
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return new NatsUnreachableError(`cannot reach NATS at ${servers}: ${reason}${cause}`, { cause: err });
  }
  return new StoreUnavailableError(`cannot connect to NATS at ${servers}: ${reason}`, { cause: err });
}

/** nats.js's error classes name themselves: the module's classes are not ours to import here. */
function isNatsError(err: unknown, name: 'AuthorizationError' | 'ConnectionError' | 'TimeoutError' | 'UserAuthenticationExpiredError'): err is Error {
  return err instanceof Error && err.name === name;
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_|ERR_OSSL_)/;

function isTlsFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_CODES.test(code)) return true;
    if (/\b(tls|ssl|certificate)\b/i.test(e.message)) return true;
  }
  return false;
}

function isNetworkFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)$/.test(code)) return true;
  }
  return false;
}

/**
 * The server says only "Authorization Violation" for an expired user JWT: say so when the creds
 * file's JWT has expired (read locally, without verifying it: a hint, on the error path only).
 */
function expiryHint(security: NatsSecurityOptions): string {
  if (!security.credsFile) return '';
  let exp: unknown;
  try {
    const jwt = /-----BEGIN NATS USER JWT-----\s*([A-Za-z0-9_=-]+\.([A-Za-z0-9_=-]+)\.[A-Za-z0-9_=-]+)/.exec(readFileSync(security.credsFile, 'utf8'));
    exp = jwt ? (JSON.parse(Buffer.from(jwt[2]!, 'base64url').toString('utf8')) as { exp?: unknown }).exp : undefined;
  } catch {
    return '';
  }
  if (typeof exp !== 'number' || exp * 1000 > Date.now()) return '';
  return ` (the user JWT in ${security.credsFile} expired at ${new Date(exp * 1000).toISOString()})`;
}
