/**
 * The HTTP/1.1 front end (API.md §2.1): RPC on `POST` to any path, registered `GET` routes, the
 * body limit, the bearer token on TCP, and the owner-only Unix socket; the head size limit, the
 * request timeouts and the connection limit of README "Limits".
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BlockList, connect, isIP, type AddressInfo, type Socket } from 'node:net';
import { DEFAULT_LIMITS, MAX_HEADER_BYTES, type LimitUsage } from '../limits/limits.js';
import { MAX_BODY_BYTES, bodyTooLargeReply, handleRpcBody, type Dispatcher, type HttpReply } from '../rpc/handler.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  listen?: { host: string; port: number };
  socketPath?: string;
  /** Mode of the Unix socket file. Default 0o600. */
  socketMode?: number;
  /**
   * When set, every TCP request except `GET /healthz` and the `publicRoutes` needs
   * `Authorization: Bearer <token>`.
   */
  token?: string;
  /** Default 16777216 (§2.1). */
  maxBodyBytes?: number;
  /** Request line and headers; default {@link MAX_HEADER_BYTES}. Larger heads get `431`. */
  maxHeaderBytes?: number;
  /** Open connections per listener (TCP and the Unix socket each); default 1024. */
  maxConnections?: number;
  /** Time to receive a request's head; default 20 s. Expiry: `408`, connection closed. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request, head and body; default 120 s. Expiry: `408`, connection closed. */
  requestTimeoutMs?: number;
  /** Idle time after which a keep-alive connection is closed; default 5 s. */
  keepAliveTimeoutMs?: number;
  dispatch: Dispatcher;
  /** `GET` routes by path (the query string is not part of the match). */
  routes?: Record<string, RouteHandler>;
  /** `GET` routes that hold no data and need no token (the web console's files: the page then asks for it). */
  publicRoutes?: Record<string, RouteHandler>;
  log?: (line: string) => void;
}

export interface HttpService {
  tcpAddress?: { host: string; port: number };
  socketPath?: string;
  /**
   * Stops accepting, lets in-flight requests finish (their connections then close), and closes
   * idle keep-alive connections. Long-lived responses (an SSE stream, a blocking `UPDATES.get`)
   * hold it up: end them, or pass `graceMs` to force-close whatever is still open after that long.
   */
  close(graceMs?: number): Promise<void>;
  /** Open connections of each listener (resources `tcp_connections`, `unix_connections`). */
  connectionUsage(): LimitUsage[];
}

/** How long a connection closed after an early reply keeps draining what the client still sends. */
const LINGER_MS = 2000;
/** For a declared over-limit body: how much to look at before deciding the 413's format. */
const SNIFF_BYTES = 65536;
/** How often Node looks for connections past their head or request deadline. */
const TIMEOUT_CHECK_MS = 500;
/** Connections refused with a 503 and still draining; beyond this many, more are dropped at once. */
const MAX_LINGERING_REFUSALS = 64;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** The status Node's own handler would send for a parser or timeout error. */
function clientErrorStatus(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/**
 * Writes a whole response on a socket outside node:http (no request object, or none yet) and
 * closes it the polite way: our side is ended, what the client still sends is dropped, and the
 * socket is destroyed once the client closes or LINGER_MS pass.
 */
function answerRawAndClose(socket: Socket, status: number, body = '', headers = ''): void {
  const head =
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n${headers}` +
    `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  socket.on('error', () => {});
  socket.on('data', () => {});
  socket.end(head + body);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** `127.0.0.0/8`, `::1` (also bracketed or IPv4-mapped) and `localhost`. */
export function isLoopbackAddress(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h === 'localhost.') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) h = mapped[1]!;
  const family = isIP(h);
  if (family === 4) return loopback.check(h, 'ipv4');
  if (family === 6) return loopback.check(h, 'ipv6');
  return false;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Whether the Authorization header carries the token (constant time in the token's content). */
function bearerMatches(header: string | undefined, expectedDigest: Buffer): 'ok' | 'missing' | 'invalid' {
  if (header === undefined) return 'missing';
  const m = /^\s*bearer\s+(.*?)\s*$/i.exec(header);
  if (!m) return 'invalid';
  const given = sha256(m[1]!);
  return given.length === expectedDigest.length && timingSafeEqual(given, expectedDigest) ? 'ok' : 'invalid';
}

function pathnameOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.search(/[?#]/);
  return q < 0 ? raw : raw.slice(0, q);
}

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/**
 * Closes the connection after the current response without resetting it: the response goes out,
 * then our side is half-closed and whatever the client is still sending is read and dropped until
 * it closes too (or LINGER_MS pass), so the client gets to read the reply.
 */
function closeAfterResponse(req: IncomingMessage): void {
  const socket = req.socket as Socket & { destroySoon?: () => void };
  req.on('data', () => {});
  req.resume();
  socket.destroySoon = function lingeringClose(this: Socket) {
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** A signal aborted when the client goes away before its reply is sent (UPDATES.get stops waiting). */
function callerGone(res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  if (res.closed) {
    if (!res.writableFinished) gone.abort();
  } else {
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
  }
  return gone.signal;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpService> {
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const log = opts.log ?? (() => {});
  const routes = new Map(Object.entries({ ...opts.publicRoutes, ...opts.routes }));
  const publicPaths = new Set(['/healthz', ...Object.keys(opts.publicRoutes ?? {})]);
  const tokenDigest = opts.token !== undefined ? sha256(opts.token) : undefined;
  const maxConnections = opts.maxConnections ?? DEFAULT_LIMITS.maxConnections;
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
  // Node refuses a head deadline past the request's.
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs, requestTimeout);
  const keepAliveTimeout = opts.keepAliveTimeoutMs ?? DEFAULT_LIMITS.keepAliveTimeoutMs;
  /** The response of each connection's latest request: a clientError must not write into it. */
  const responses = new WeakMap<Socket, ServerResponse>();
  /** Sockets a raw error reply was written to: they only drain until they close. */
  const answered = new WeakSet<Socket>();
  let lingeringRefusals = 0;
  let closing = false;

  const sendReply = (req: IncomingMessage, res: ServerResponse, reply: HttpReply): void => {
    if (res.writableEnded || res.destroyed) return;
    const headers: Record<string, string> = { ...reply.headers };
    if (reply.status !== 204) headers['Content-Length'] = String(Buffer.byteLength(reply.body));
    if (reply.close || closing) headers['Connection'] = 'close';
    if (reply.close) closeAfterResponse(req);
    res.writeHead(reply.status, headers);
    res.end(reply.body === '' ? undefined : reply.body);
  };

  /** An empty-bodied reply sent without reading the request body (which closes the connection). */
  const sendEmpty = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string> = {}) => {
    sendReply(req, res, { status, headers, body: '', close: hasBody(req) });
  };

  const handlePost = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void => {
    const cl = req.headers['content-length'];
    if (cl === undefined && req.headers['transfer-encoding'] === undefined) {
      sendEmpty(req, res, 411);
      return;
    }
    const contentType = req.headers['content-type'];
    const declared = cl !== undefined ? Number(cl) : undefined;
    const declaredTooLarge = declared !== undefined && declared > maxBody;
    if (declaredTooLarge && expectContinue) {
      sendReply(req, res, bodyTooLargeReply(Buffer.alloc(0), contentType, maxBody));
      return;
    }
    if (expectContinue) res.writeContinue();

    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const tooLarge = () => {
      done = true;
      // Only the first bytes decide the reply's format (§2.2); do not copy the whole body.
      const head: Buffer[] = [];
      let n = 0;
      for (const c of chunks) {
        if (n >= SNIFF_BYTES) break;
        head.push(c);
        n += c.length;
      }
      const prefix = Buffer.concat(head).subarray(0, SNIFF_BYTES);
      chunks.length = 0;
      sendReply(req, res, bodyTooLargeReply(prefix, contentType, maxBody));
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      if (total + chunk.length > maxBody) {
        if (total < SNIFF_BYTES) chunks.push(chunk.subarray(0, SNIFF_BYTES - total));
        total += chunk.length;
        tooLarge();
        return;
      }
      total += chunk.length;
      chunks.push(chunk);
      // A declared over-limit body is refused as soon as its format can be told (§2.2).
      if (declaredTooLarge && (total >= SNIFF_BYTES || chunk.some((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d))) tooLarge();
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const body = Buffer.concat(chunks, total);
      chunks.length = 0;
      let gone: AbortSignal | undefined;
      handleRpcBody(body, contentType, opts.dispatch, () => (gone ??= callerGone(res)), traceparentOf(req)).then(
        (reply) => sendReply(req, res, reply),
        (e: unknown) => {
          // handleRpcBody never rejects; this is a last resort
          log(`http: RPC handler failed: ${e instanceof Error ? e.message : String(e)}`);
          if (!res.headersSent) sendEmpty(req, res, 500);
          else res.destroy();
        },
      );
    });
    req.on('error', () => {
      done = true;
      chunks.length = 0;
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse, viaSocket: boolean, expectContinue: boolean): void => {
    res.on('error', () => {});
    responses.set(req.socket, res);
    const path = pathnameOf(req.url);
    if (!viaSocket && tokenDigest !== undefined && !(req.method === 'GET' && publicPaths.has(path))) {
      const verdict = bearerMatches(req.headers['authorization'], tokenDigest);
      if (verdict !== 'ok') {
        const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
        log(`http: 401 ${req.method ?? '?'} ${path} from ${peer}: ${verdict} bearer token`);
        sendEmpty(req, res, 401, { 'WWW-Authenticate': 'Bearer' });
        return;
      }
    }
    if (req.method === 'POST') {
      handlePost(req, res, expectContinue);
      return;
    }
    const route = req.method === 'GET' ? routes.get(path) : undefined;
    if (route === undefined) {
      sendEmpty(req, res, 404);
      return;
    }
    if (expectContinue) res.writeContinue();
    const fail = (e: unknown) => {
      log(`http: GET ${path} failed: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) sendEmpty(req, res, 500);
      else res.destroy();
    };
    try {
      Promise.resolve(route(req, res)).catch(fail);
    } catch (e) {
      fail(e);
    }
  };

  /**
   * A head over the size limit (431), a head or request past its deadline (408) or a malformed
   * request (400): answered with an empty body unless a reply is already going out, then closed.
   */
  const onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    // The rest of a refused request keeps failing to parse: the answer is already on its way.
    if (answered.has(socket)) return;
    const res = responses.get(socket);
    const midReply = res !== undefined && res.headersSent && !res.writableFinished;
    if (!socket.writable || socket.destroyed || err.code === 'ECONNRESET' || midReply) {
      socket.destroy();
      return;
    }
    answered.add(socket);
    answerRawAndClose(socket, clientErrorStatus(err.code));
  };

  /**
   * Admits a new connection while the listener has fewer than `maxConnections` open; past that the
   * client is told so (503, `Retry-After`) rather than reset, as long as that stays cheap.
   */
  const gateConnections = (server: Server, usage: { open: number; refusals: number }): void => {
    const accept = server.listeners('connection') as Array<(socket: Socket) => void>;
    if (accept.length !== 1) throw new Error(`node:http registered ${accept.length} connection listeners; expected 1`);
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (usage.open < maxConnections) {
        usage.open++;
        socket.once('close', () => usage.open--);
        accept[0]!.call(server, socket);
        return;
      }
      usage.refusals++;
      if (lingeringRefusals >= MAX_LINGERING_REFUSALS) {
        socket.on('error', () => {});
        socket.destroy();
        return;
      }
      lingeringRefusals++;
      socket.once('close', () => lingeringRefusals--);
      answerRawAndClose(socket, 503, `too many connections (limit ${maxConnections})`, 'Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n');
    });
  };

  const usages = new Map<string, { open: number; refusals: number }>();
  const makeServer = (viaSocket: boolean): Server => {
    const server = createServer({
      maxHeaderSize: opts.maxHeaderBytes ?? MAX_HEADER_BYTES,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      headersTimeout,
      requestTimeout,
    });
    // Set here rather than left to Node's defaults, which have changed between releases. No
    // socket inactivity timeout (`server.timeout` stays 0): a blocking UPDATES.get or an SSE
    // stream is idle for as long as nothing happens, and its request was received long before.
    server.keepAliveTimeout = keepAliveTimeout;
    server.timeout = 0;
    const usage = { open: 0, refusals: 0 };
    usages.set(viaSocket ? 'unix_connections' : 'tcp_connections', usage);
    gateConnections(server, usage);
    server.on('request', (req, res) => handle(req, res, viaSocket, false));
    server.on('checkContinue', (req, res) => handle(req, res, viaSocket, true));
    server.on('clientError', onClientError);
    return server;
  };

  const servers: Server[] = [];
  const service: HttpService = {
    connectionUsage() {
      return [...usages].map(([resource, u]) => ({ resource, limit: maxConnections, inUse: u.open, refusals: u.refusals }));
    },
    async close(graceMs?: number) {
      closing = true;
      const timer =
        graceMs !== undefined ? setTimeout(() => servers.forEach((s) => s.closeAllConnections()), graceMs) : undefined;
      timer?.unref();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (!s.listening) return resolve();
              s.close(() => resolve());
              s.closeIdleConnections();
            }),
        ),
      );
      if (timer) clearTimeout(timer);
    },
  };

  const listen = (server: Server, arg: { host: string; port: number } | string): Promise<void> =>
    new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      const done = () => {
        server.off('error', onError);
        resolve();
      };
      if (typeof arg === 'string') {
        // Narrow the umask while the socket file is created, so it is never briefly wider than
        // owner-only; the chmod below sets the requested mode.
        let oldMask: number | undefined;
        try {
          oldMask = process.umask(0o177);
        } catch {
          oldMask = undefined; // worker threads cannot change the umask
        }
        try {
          server.listen(arg, done);
        } finally {
          if (oldMask !== undefined) process.umask(oldMask);
        }
      } else {
        server.listen({ host: arg.host, port: arg.port }, done);
      }
    });

  try {
    if (opts.listen) {
      const server = makeServer(false);
      servers.push(server);
      await listen(server, opts.listen);
      const addr = server.address() as AddressInfo;
      service.tcpAddress = { host: addr.address, port: addr.port };
    }
    if (opts.socketPath !== undefined) {
      const path = opts.socketPath;
      await removeStaleSocket(path);
      const server = makeServer(true);
      servers.push(server);
      await listen(server, path);
      await chmod(path, opts.socketMode ?? 0o600);
      service.socketPath = path;
    }
  } catch (e) {
    await service.close(0);
    throw e;
  }
  return service;
}

/**
 * Removes a socket file left by a previous run. Refuses to touch a file that is not a socket or a
 * socket somebody is listening on.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve, reject) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else reject(e);
    });
  });
  if (alive) throw new Error(`${path}: another process is listening on this socket`);
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/** The request's `traceparent` header; repeated ones arrive joined and are then invalid (ignored, as W3C asks). */
function traceparentOf(req: IncomingMessage): string | undefined {
  const h = req.headers.traceparent;
  return typeof h === 'string' ? h : undefined;
}
