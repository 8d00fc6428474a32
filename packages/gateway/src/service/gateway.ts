import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Stores } from '@xenops/core';
import { createDispatcher, type CallRecord } from '../dispatch/dispatcher.js';
import { startHttpServer, type HttpService } from '../http/server.js';
import type { GatewayContext } from '../methods/method.js';
import { Projection } from '../read-model/projection.js';
import { EngineClient } from './engine-client.js';

export interface GatewayOptions {
  readonly stores: Stores;
  /** This host's id: where VM.start puts new domains (§7.11). */
  readonly hostId: string;
  readonly version: string;
  readonly listen?: { readonly host: string; readonly port: number };
  readonly socketPath?: string;
  readonly socketMode?: number;
  readonly token?: string;
  readonly logger?: (line: string) => void;
  /** DEBUG.shutdown: called after the reply is sent. */
  readonly onShutdownRequest?: () => void;
  readonly onCall?: (record: CallRecord) => void;
}

/**
 * The gateway: HTTP (TCP and Unix socket) in front of the dispatcher, a read model folded from
 * the log, and the command bus to the agents.
 */
export class Gateway {
  private constructor(
    /** UUID v4 of this process start (query's `instance_id`, §7.11). */
    readonly instanceId: string,
    readonly projection: Projection,
    private readonly http: HttpService,
  ) {}

  get tcpAddress() {
    return this.http.tcpAddress;
  }

  get socketPath() {
    return this.http.socketPath;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const { stores } = opts;
    const log = opts.logger ?? (() => {});
    const projection = new Projection(stores.log);
    await projection.start();
    log(`gateway: read model at seq ${projection.seq} (${projection.vms.size} VM(s), ${projection.tasks.size} task(s))`);
    const instanceId = randomUUID();
    const context: GatewayContext = {
      hostId: opts.hostId,
      mode: stores.mode,
      instanceId,
      version: opts.version,
      projection,
      engine: new EngineClient(stores.bus, projection),
      log: stores.log,
      requestShutdown: () => setImmediate(() => opts.onShutdownRequest?.()),
    };
    const dispatch = createDispatcher(context, opts.onCall);
    const http = await startHttpServer({
      ...(opts.listen ? { listen: opts.listen } : {}),
      ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
      ...(opts.socketMode !== undefined ? { socketMode: opts.socketMode } : {}),
      ...(opts.token ? { token: opts.token } : {}),
      dispatch,
      log,
      routes: {
        '/healthz': async (_req, res) => healthz(res, context),
      },
    });
    return new Gateway(instanceId, projection, http);
  }

  async close(): Promise<void> {
    await this.http.close(5_000);
    await this.projection.close();
  }
}

async function healthz(res: ServerResponse, ctx: GatewayContext): Promise<void> {
  let status = 200;
  let body: object;
  try {
    const seq = await ctx.log.head();
    if (!ctx.projection.healthy) throw new Error('the read model could not fold the log');
    body = { status: 'ok', seq, mode: ctx.mode, instance_id: ctx.instanceId };
  } catch (e) {
    status = 503;
    body = { status: 'unavailable', reason: (e as Error).message };
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
