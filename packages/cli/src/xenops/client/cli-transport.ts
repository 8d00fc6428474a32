/**
 * The client's transports with the command line's words for their failures: each becomes a
 * `CliError` with the exit code of its class and what to do about it.
 */
import {
  XenopsAuthError,
  XenopsConnectionError,
  XenopsProtocolError,
  type HttpTransport,
  type NatsTransport,
  type Transport,
} from '@xenops/client';
import type { IncomingHttpHeaders } from 'node:http';
import { CliError, ExitCode } from '../errors.js';

/** What to tell a user whose service is not running. */
export const START_HINT = "is xenopsd running? Start it with 'npm start' in the xenops-ts checkout, or run 'xenopsd'";

/** The GET routes of the HTTP server (`/log`, `/verify`, `/backup`). */
export interface HttpRoutes {
  get(path: string, timeoutMs: number): Promise<string>;
  download(path: string, idleTimeoutMs: number, onResponse: (headers: IncomingHttpHeaders) => void, onChunk: (chunk: Buffer) => void): Promise<void>;
}

export class CliTransport implements Transport {
  readonly describe: string;
  /** Present over HTTP only. */
  readonly http: HttpRoutes | undefined;

  constructor(private readonly inner: { kind: 'http'; transport: HttpTransport } | { kind: 'nats'; transport: NatsTransport; servers: string }) {
    this.describe = inner.transport.describe;
    if (inner.kind === 'http') {
      const t = inner.transport;
      this.http = {
        get: (path, timeoutMs) => this.mapped(t.get(path, timeoutMs)),
        download: (path, idle, onResponse, onChunk) => this.mapped(t.download(path, idle, onResponse, onChunk)),
      };
    }
  }

  send(body: string, timeoutMs: number): Promise<string> {
    return this.mapped(this.inner.transport.send(body, timeoutMs));
  }

  close(): Promise<void> {
    return this.inner.transport.close();
  }

  private async mapped<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      throw this.cliError(e);
    }
  }

  private cliError(e: unknown): unknown {
    const where = this.describe;
    if (e instanceof XenopsAuthError) {
      if (this.inner.kind === 'nats') return new CliError(`${e.message}; check --nats-creds, --nats-nkey and --nats-tls-ca`, ExitCode.AUTH);
      return new CliError(
        e.credentialsGiven
          ? `the server at ${where} rejected the token; check --token-file (or XENOPS_TOKEN_FILE)`
          : `the server at ${where} requires a token; pass --token-file PATH (or set XENOPS_TOKEN_FILE), or use the Unix socket with --socket`,
        ExitCode.AUTH,
      );
    }
    if (e instanceof XenopsProtocolError) return new CliError(e.message, ExitCode.GENERIC);
    if (!(e instanceof XenopsConnectionError)) return e;
    if (this.inner.kind === 'nats') {
      const { servers, transport } = this.inner;
      switch (e.problem) {
        case 'nats-unreachable':
          return new CliError(`${e.message}; start nats-server (with -js) or check --nats`, ExitCode.CONNECTION);
        case 'no-responders':
          return new CliError(`no xenopsd gateway answers on NATS subject ${transport.subject} at ${servers}; start one with 'xenopsd --nats ${servers}'`, ExitCode.CONNECTION);
        default:
          return new CliError(e.message, ExitCode.CONNECTION);
      }
    }
    switch (e.problem) {
      case 'refused':
        return new CliError(`cannot connect to xenopsd at ${where}: connection refused; ${START_HINT}`, ExitCode.CONNECTION);
      case 'no-socket':
        return new CliError(`cannot connect to xenopsd at ${where}: the socket does not exist; ${START_HINT}`, ExitCode.CONNECTION);
      case 'permission':
        return new CliError(`cannot connect to xenopsd at ${where}: permission denied (the socket is owner-only); run as its owner or ask for --socket-mode`, ExitCode.CONNECTION);
      case 'timeout':
        return new CliError(`no answer from xenopsd at ${where} in time; check that the service is healthy (GET /healthz)`, ExitCode.CONNECTION);
      case 'unknown-host':
        return new CliError(`cannot connect to xenopsd at ${where}: unknown host; check --url`, ExitCode.CONNECTION);
      default: {
        // A reply cut short is its own story; anything else is a connection that did not work.
        if (/was cut before the end of the reply/.test(e.message)) return new CliError(`${e.message}; see the service's log`, ExitCode.CONNECTION);
        const cause = e.cause as (Error & { cause?: Error }) | undefined;
        const detail = cause?.cause?.message ?? cause?.message ?? e.message;
        return new CliError(`cannot connect to xenopsd at ${where}: ${detail}; ${START_HINT}`, ExitCode.CONNECTION);
      }
    }
  }
}
