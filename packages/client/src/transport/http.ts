/**
 * JSON-RPC bodies over HTTP/1.1 (API.md §2.1): on TCP (`http://host:8440`, with an optional bearer
 * token) or on the service's Unix socket (`<data-dir>/xenopsd.sock`); also the GET routes of the
 * same server (`/log`, `/verify`, `/backup`). node:http rather than fetch: fetch cannot reach a
 * Unix socket, refuses the ports of its "bad port" list (1, 6000, 6667, ...) whatever the server,
 * and its keep-alive pool holds a short-lived process (the CLI) open after its last call; here a
 * request has its own connection (`agent: false`), as a blocking `UPDATES.get` needs anyway.
 */
import http from 'node:http';
import https from 'node:https';
import { XenopsAuthError, XenopsConnectionError, XenopsProtocolError, type ConnectionProblem } from '../errors.js';
import type { Transport } from './transport.js';

export interface HttpTarget {
  /** `http://host:port[/path]` (https also works). */
  readonly url?: string;
  /** A Unix socket path; used instead of `url`. */
  readonly socketPath?: string;
  /** Sent as `Authorization: Bearer <token>` on TCP (the socket never needs one, §2.1). */
  readonly token?: string;
  /** Sent as `User-Agent` (default `xenops-client`). */
  readonly userAgent?: string;
}

export class HttpTransport implements Transport {
  readonly describe: string;
  private readonly url: URL | undefined;

  constructor(private readonly target: HttpTarget) {
    this.describe = target.socketPath ? `unix:${target.socketPath}` : (target.url ?? '');
    if (!target.socketPath) {
      let u: URL;
      try {
        u = new URL(target.url ?? '');
      } catch {
        throw new TypeError(`invalid URL ${JSON.stringify(target.url)}; expected e.g. http://127.0.0.1:8440`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new TypeError(`invalid URL ${u.href}: only http:// and https:// are supported (a Unix socket is given as socketPath)`);
      }
      this.url = u;
    }
  }

  send(body: string, timeoutMs: number): Promise<string> {
    return this.exchange('POST', undefined, body, timeoutMs);
  }

  /** `GET <path>` on the same server: the audit routes (`/log`, `/verify`). */
  get(path: string, timeoutMs: number): Promise<string> {
    return this.exchange('GET', path, undefined, timeoutMs);
  }

  private headers(body: string | undefined): Record<string, string> {
    const headers: Record<string, string> = { 'User-Agent': this.target.userAgent ?? 'xenops-client' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.url && this.target.token) headers.Authorization = `Bearer ${this.target.token}`;
    return headers;
  }

  private exchange(method: 'GET' | 'POST', path: string | undefined, body: string | undefined, timeoutMs: number): Promise<string> {
    const headers = { ...this.headers(body), ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }) };
    const { mod, options } = this.requestOptions(path);
    return new Promise<string>((resolve, reject) => {
      const req = mod.request({ ...options, method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(connectionError(e, this.describe)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(this.statusError(res.statusCode ?? 0, text));
          else resolve(text);
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(connectionError(e, this.describe)));
      req.end(body);
    });
  }

  private requestOptions(path: string | undefined): { mod: typeof http | typeof https; options: http.RequestOptions } {
    if (!this.url) return { mod: http, options: { socketPath: this.target.socketPath, path: path ?? '/' } };
    const u = this.url;
    return {
      mod: u.protocol === 'https:' ? https : http,
      options: { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (u.protocol === 'https:' ? 443 : 80), path: path ?? (u.pathname || '/') },
    };
  }

  /**
   * `GET <path>` whose body is passed on chunk by chunk as it arrives (`/backup`): resolves with
   * the response headers once `onChunk` has had the last chunk. `idleTimeoutMs` bounds a pause.
   * A failure of `onChunk` (e.g. the receiver's disk is full) is the one reported.
   */
  download(path: string, idleTimeoutMs: number, onResponse: (headers: http.IncomingHttpHeaders) => void, onChunk: (chunk: Buffer) => void): Promise<void> {
    const { mod, options } = this.requestOptions(path);
    return new Promise<void>((resolve, reject) => {
      const req = mod.request({ ...options, method: 'GET', headers: this.headers(undefined), agent: false }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(connectionError(e, this.describe)));
          res.on('end', () => reject(this.statusError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
          return;
        }
        onResponse(res.headers);
        res.on('data', (c: Buffer) => {
          try {
            onChunk(c);
          } catch (e) {
            reject(e);
            req.destroy();
          }
        });
        const cut = () => new XenopsConnectionError('other', this.describe, `the connection to ${this.describe} was cut before the end of the reply`);
        res.on('error', () => reject(cut()));
        res.on('end', () => (res.complete ? resolve() : reject(cut())));
      });
      req.setTimeout(idleTimeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(connectionError(e, this.describe)));
      req.end();
    });
  }

  private statusError(status: number, text: string): Error {
    if (status === 401) {
      const given = this.target.token !== undefined && this.url !== undefined;
      return new XenopsAuthError(this.describe, given, given ? `the server at ${this.describe} rejected the token` : `the server at ${this.describe} requires a token`);
    }
    // Routes answer a failure as {"error": "..."}: its message rather than the JSON.
    let shown = text.slice(0, 200);
    try {
      const e = (JSON.parse(text) as { error?: unknown }).error;
      if (typeof e === 'string') shown = e;
    } catch {
      /* not JSON */
    }
    return new XenopsProtocolError(this.describe, `unexpected HTTP ${status} from ${this.describe}${shown ? `: ${shown}` : ''}`, status, shown);
  }

  async close(): Promise<void> {}
}

/** A failure to reach the service, by what node:http or fetch (its `cause`) reports. */
function connectionError(e: unknown, where: string): XenopsConnectionError {
  if (e instanceof XenopsConnectionError) return e;
  const err = e as Error & { code?: string; cause?: Error & { code?: string } };
  const code = err.code ?? err.cause?.code;
  const timedOut = err.name === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
  const problem: ConnectionProblem = timedOut
    ? 'timeout'
    : code === 'ECONNREFUSED'
      ? 'refused'
      : code === 'ENOENT'
        ? 'no-socket'
        : code === 'EACCES'
          ? 'permission'
          : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
            ? 'unknown-host'
            : 'other';
  const detail = err.cause?.message ?? err.message;
  return new XenopsConnectionError(problem, where, `cannot reach xenopsd at ${where}: ${timedOut ? 'no answer in time' : detail}`, { cause: e });
}
