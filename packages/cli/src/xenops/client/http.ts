/** JSON-RPC bodies over HTTP/1.1, on TCP (`--url`) or a Unix socket (`--socket`), API.md §2.1. */
import http from 'node:http';
import https from 'node:https';
import { CliError, ExitCode } from '../errors.js';
import { START_HINT, type Transport } from './transport.js';

export interface HttpTarget {
  /** `http://host:port[/path]` (https also works). */
  url?: string;
  /** Unix socket path; used instead of `url`. */
  socketPath?: string;
  /** Sent as `Authorization: Bearer <token>` on TCP. */
  token?: string;
}

export class HttpTransport implements Transport {
  readonly describe: string;
  constructor(private readonly target: HttpTarget) {
    this.describe = target.socketPath ? `unix:${target.socketPath}` : (target.url ?? '');
  }

  send(body: string, timeoutMs: number): Promise<string> {
    return this.exchange('POST', undefined, body, timeoutMs);
  }

  /** `GET <path>` on the same server: the audit endpoints (`/log`, `/verify`). */
  get(path: string, timeoutMs: number): Promise<string> {
    return this.exchange('GET', path, undefined, timeoutMs);
  }

  /**
   * `GET <path>` whose body is passed on chunk by chunk as it arrives (`/backup`): resolves with
   * the response headers once `onChunk` has had the last chunk. `idleTimeoutMs` bounds a pause.
   */
  download(path: string, idleTimeoutMs: number, onResponse: (headers: http.IncomingHttpHeaders) => void, onChunk: (chunk: Buffer) => void): Promise<void> {
    const { mod, options, headers } = this.requestOf(path, undefined);
    return new Promise<void>((resolve, reject) => {
      const req = mod.request({ ...options, method: 'GET', headers, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(this.connectionError(e)));
          res.on('end', () => reject(this.statusError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
          return;
        }
        onResponse(res.headers);
        res.on('data', (c: Buffer) => {
          try {
            onChunk(c);
          } catch (e) {
            // The receiver's failure (e.g. its disk is full) is the one to report.
            reject(e);
            req.destroy();
          }
        });
        const cut = () => new CliError(`the connection to ${this.describe} was cut before the end of the reply; see the service's log`, ExitCode.CONNECTION);
        res.on('error', () => reject(cut()));
        res.on('end', () => (res.complete ? resolve() : reject(cut())));
      });
      req.setTimeout(idleTimeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(e instanceof CliError ? e : this.connectionError(e)));
      req.end();
    });
  }

  private requestOf(path: string | undefined, body: string | undefined): { mod: typeof http | typeof https; options: http.RequestOptions; headers: Record<string, string | number> } {
    const headers: Record<string, string | number> = { 'User-Agent': 'xenops-cli' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    let options: http.RequestOptions;
    let mod: typeof http | typeof https = http;
    if (this.target.socketPath) {
      options = { socketPath: this.target.socketPath, path: path ?? '/' };
    } else {
      let u: URL;
      try {
        u = new URL(this.target.url ?? '');
      } catch {
        throw new CliError(`invalid --url ${JSON.stringify(this.target.url)}; expected e.g. http://127.0.0.1:8440`, ExitCode.USAGE);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new CliError(`invalid --url ${u.href}: only http:// and https:// are supported (use --socket for a Unix socket)`, ExitCode.USAGE);
      }
      if (u.protocol === 'https:') mod = https;
      options = { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (u.protocol === 'https:' ? 443 : 80), path: path ?? (u.pathname || '/') };
      if (this.target.token) headers.Authorization = `Bearer ${this.target.token}`;
    }
    return { mod, options, headers };
  }

  private statusError(status: number, text: string): CliError {
    if (status === 401) {
      return new CliError(
        this.target.token
          ? `the server at ${this.describe} rejected the token; check --token-file (or XENOPS_TOKEN_FILE)`
          : `the server at ${this.describe} requires a token; pass --token-file PATH (or set XENOPS_TOKEN_FILE), or use the Unix socket with --socket`,
        ExitCode.AUTH,
      );
    }
    // Routes answer a failure as {"error": "..."}: show its message rather than the JSON.
    let shown = text.slice(0, 200);
    try {
      const e = (JSON.parse(text) as { error?: unknown }).error;
      if (typeof e === 'string') shown = e;
    } catch {
      /* not JSON */
    }
    return new CliError(`unexpected HTTP ${status} from ${this.describe}${shown ? `: ${shown}` : ''}`, ExitCode.GENERIC);
  }

  private exchange(method: 'GET' | 'POST', path: string | undefined, body: string | undefined, timeoutMs: number): Promise<string> {
    const { mod, options, headers } = this.requestOf(path, body);
    return new Promise<string>((resolve, reject) => {
      const req = mod.request({ ...options, method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(this.connectionError(e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(this.statusError(res.statusCode ?? 0, text));
          else resolve(text);
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(this.connectionError(e)));
      req.end(body ?? undefined);
    });
  }

  private connectionError(e: Error & { code?: string }): CliError {
    const where = this.describe;
    switch (e.code) {
      case 'ECONNREFUSED':
        return new CliError(`cannot connect to xenopsd at ${where}: connection refused; ${START_HINT}`, ExitCode.CONNECTION);
      case 'ENOENT':
        return new CliError(`cannot connect to xenopsd at ${where}: the socket does not exist; ${START_HINT}`, ExitCode.CONNECTION);
      case 'EACCES':
        return new CliError(`cannot connect to xenopsd at ${where}: permission denied (the socket is owner-only); run as its owner or ask for --socket-mode`, ExitCode.CONNECTION);
      case 'ETIMEDOUT':
        return new CliError(`no answer from xenopsd at ${where} in time; check that the service is healthy (GET /healthz)`, ExitCode.CONNECTION);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new CliError(`cannot connect to xenopsd at ${where}: unknown host; check --url`, ExitCode.CONNECTION);
      default:
        return new CliError(`cannot connect to xenopsd at ${where}: ${e.message}; ${START_HINT}`, ExitCode.CONNECTION);
    }
  }

  async close(): Promise<void> {}
}
