import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { NatsConnection } from '@nats-io/transport-node';
import { Errors, quarantinesOf, type FoldSnapshot, type FoldSnapshotLoader, type ReadModelFold, type Stores } from '@xenops/core';
import { createDispatcher, type CallRecord } from '../dispatch/dispatcher.js';
import { startHttpServer, type HttpService } from '../http/server.js';
import type { GatewayContext } from '../methods/method.js';
import { logRoute } from '../audit/log-route.js';
import { verifyRoute } from '../audit/verify.js';
import { backupRoute } from '../backup/backup-route.js';
import { Projection } from '../read-model/projection.js';
import { RetentionJanitor } from '../retention/janitor.js';
import { TaskReaper } from '../retention/task-reaper.js';
import { ClusterLease } from '../retention/cluster-lease.js';
import { DEFAULT_HOST_DOWN_AFTER_MS } from '../hosts/host-records.js';
import type { PlacementPolicy } from '../hosts/placement.js';
import { ChangeFeed } from '../changes/change-feed.js';
import { publishChanges } from '../changes/nats-publisher.js';
import { createSseService, type SseService } from '../changes/sse.js';
import { DEFAULT_LIMITS, type GatewayLimits, type LimitUsage } from '../limits/limits.js';
import { GatewayMetrics, type MetricFamily } from '../metrics/gateway-metrics.js';
import { staticAssetRoutes } from '../http/static-assets.js';
import { CLASSIC_QUEUE, startNatsRpc, type NatsRpcService } from '../nats-rpc/nats-rpc.js';
import { UpdatesService } from '../updates/updates-service.js';
import { EngineClient } from './engine-client.js';

/**
 * The stores the gateway serves from; in NATS mode with their connection, for the public subjects
 * (the JSON-RPC subject of API.md §2.7 and the change records of §9.4), which are not namespaced by
 * the prefix.
 */
export type GatewayStores = Stores & { readonly nats?: NatsConnection };

export interface GatewayOptions {
  readonly stores: GatewayStores;
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
  /**
   * NATS mode: the RPC subject (§2.7, flag `--queue NAME`). Default `org.xen.xapi.xenops.classic`
   * (or env `XENOPS_QUEUE` when the option is absent).
   */
  readonly natsQueue?: string;
  /** Retention period in days; absent: the log keeps every event (issue 5). */
  readonly retentionDays?: number;
  /** Where the read model gets the fold snapshot at start (default: loads it from the store). */
  readonly loadFoldSnapshot?: FoldSnapshotLoader;
  /** Resource limits and timeouts (README "Limits"); each absent one has its default. */
  readonly limits?: Partial<GatewayLimits>;
  /** The built web console's directory (`@xenops/console`), served at `GET /ui`; absent: no console. */
  readonly consoleDir?: string;
  /** Where VM.start / VM.resume put an unowned VM without an explicit host (§9.7; default local). */
  readonly placement?: PlacementPolicy;
  /** A host whose registration is older than this is Down (§9.7; default 15 s). */
  readonly hostDownAfterMs?: number;
  /** `--host-scope ID`: VM.list, VM.stat and UPDATES show only that host's VMs. */
  readonly hostScope?: string;
  /** Metric families of the process that `/metrics` shows besides the gateway's own (e.g. append latency). */
  readonly metricFamilies?: readonly MetricFamily[];
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
    private readonly parts: {
      readonly updates: UpdatesService;
      readonly sse: SseService;
      readonly natsRpc?: NatsRpcService;
      readonly stopPublishing?: () => void;
      readonly janitor?: RetentionJanitor;
      readonly reaper: TaskReaper;
      readonly storeWatch: NodeJS.Timeout;
      readonly leases: readonly ClusterLease[];
    },
  ) {}

  get tcpAddress() {
    return this.http.tcpAddress;
  }

  get socketPath() {
    return this.http.socketPath;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    return (await Gateway.fold(opts)).serve();
  }

  /**
   * The first half of `start`: the read model folded up to the head, nothing served yet. An agent
   * in the same process starts from this fold (`FoldedGateway.foldSnapshot`) instead of folding
   * the log a second time.
   */
  static async fold(opts: GatewayOptions): Promise<FoldedGateway> {
    const { stores } = opts;
    const log = opts.logger ?? (() => {});
    const limits: GatewayLimits = { ...DEFAULT_LIMITS, ...opts.limits };
    const projection = new Projection(stores.log, { snapshots: stores.snapshots, logger: log, loadFoldSnapshot: opts.loadFoldSnapshot });
    // Observers of the fold, attached before it starts so that they see the whole log.
    const updates = new UpdatesService(projection, stores.log, { hostId: opts.hostId }, { maxWaiters: limits.maxUpdatesWaiters });
    const changes = new ChangeFeed(projection, log);
    await projection.start();
    log(`gateway: read model at seq ${projection.seq} (${projection.vms.size} VM(s), ${projection.tasks.size} task(s))`);
    return {
      foldSnapshot: () => projection.snapshot(),
      readModelFold: () => ({ fold: projection.snapshot(), readAfter: projection.restoredSeq }),
      serve: () => Gateway.serve(opts, limits, projection, updates, changes),
      close: async () => {
        updates.close();
        await projection.close();
      },
    };
  }

  private static async serve(
    opts: GatewayOptions,
    limits: GatewayLimits,
    projection: Projection,
    updates: UpdatesService,
    changes: ChangeFeed,
  ): Promise<Gateway> {
    const { stores } = opts;
    const log = opts.logger ?? (() => {});
    const instanceId = randomUUID();
    const engine = new EngineClient(stores.bus, projection);
    // The cluster-wide jobs run in the one gateway that holds their lease (issue 14).
    const holder = `${opts.hostId}/${instanceId}`;
    let reaper: TaskReaper | undefined;
    let janitor: RetentionJanitor | undefined;
    // The reaper's first pass comes one period after it starts, as before the lease; the janitor
    // ran a pass at once, so it does as soon as its gateway holds the lease.
    const reaperLease = new ClusterLease('task-reaper', stores.leases, holder, log);
    const janitorLease = opts.retentionDays !== undefined ? new ClusterLease('retention', stores.leases, holder, log, () => janitor?.runSoon()) : undefined;
    const leases = [reaperLease, ...(janitorLease ? [janitorLease] : [])];
    const context: GatewayContext = {
      hostId: opts.hostId,
      mode: stores.mode,
      instanceId,
      version: opts.version,
      projection,
      engine,
      log: stores.log,
      hosts: stores.hosts,
      hostDownAfterMs: opts.hostDownAfterMs ?? DEFAULT_HOST_DOWN_AFTER_MS,
      placement: opts.placement ?? 'local',
      ...(opts.hostScope !== undefined ? { hostScope: opts.hostScope } : {}),
      logLine: log,
      leasesHeld: () => leases.filter((l) => l.isHeld).map((l) => l.name),
      holdLease: (name) => {
        const lease = new ClusterLease(name, stores.leases, holder, log);
        lease.start();
        return { release: () => lease.stop() };
      },
      requestShutdown: () => setImmediate(() => opts.onShutdownRequest?.()),
    };
    const sse = createSseService(changes, stores.log, { snapshots: stores.snapshots, maxClients: limits.maxSseClients });
    // Filled in as the parts that own them start.
    let http: HttpService | undefined;
    let natsRpc: NatsRpcService | undefined;
    const metrics = new GatewayMetrics({
      projection,
      log: stores.log,
      updatesWaiters: () => updates.waiterCount,
      sseClients: () => sse.clientCount,
      ...(opts.metricFamilies ? { families: opts.metricFamilies } : {}),
      limits: (): LimitUsage[] => [
        ...(http?.connectionUsage() ?? []),
        updates.waiterUsage,
        sse.clientUsage,
        ...(natsRpc ? [natsRpc.usage] : []),
        { resource: 'vm_queued_tasks', limit: limits.maxQueuedTasks, inUse: longestQueue(projection), refusals: engine.queueFullRefusals },
      ],
    });
    const dispatch = createDispatcher(context, (record) => {
      metrics.observeCall(record);
      opts.onCall?.(record);
    });
    http = await startHttpServer({
      ...(opts.listen ? { listen: opts.listen } : {}),
      ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
      ...(opts.socketMode !== undefined ? { socketMode: opts.socketMode } : {}),
      ...(opts.token ? { token: opts.token } : {}),
      maxConnections: limits.maxConnections,
      headersTimeoutMs: limits.headersTimeoutMs,
      requestTimeoutMs: limits.requestTimeoutMs,
      keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
      dispatch,
      log,
      // The console's files need no token: they hold no data, and the page asks for the token.
      ...(opts.consoleDir ? { publicRoutes: staticAssetRoutes(opts.consoleDir, '/ui') } : {}),
      routes: {
        '/healthz': async (_req, res) => healthz(res, context),
        '/events': sse.handler,
        '/metrics': async (_req, res) => metrics.serve(res),
        // Extensions for the audit tools (`xenops log`, `xenops verify`): not part of API.md.
        '/log': logRoute(stores.log, (id) => projection.vms.get(id)?.config?.name),
        '/verify': verifyRoute(stores.log, projection, stores.snapshots),
        // `xenops backup`: a consistent copy of the store (extension, like the two above).
        '/backup': backupRoute(stores, opts.version, log),
      },
    });
    let stopPublishing: (() => void) | undefined;
    if (stores.nats) {
      try {
        stopPublishing = publishChanges(changes, stores.nats, log);
        natsRpc = startNatsRpc(stores.nats, dispatch, {
          subject: opts.natsQueue ?? process.env.XENOPS_QUEUE ?? CLASSIC_QUEUE,
          maxInFlight: limits.maxNatsRequests,
          log,
        });
      } catch (e) {
        stopPublishing?.();
        await http.close(0);
        await projection.close();
        throw e;
      }
    }
    // The store going away fails the blocked UPDATES.get calls (it is polled: a cheap local check).
    let storeDown = false;
    const storeWatch = setInterval(() => {
      void (stores.log.writeProblem?.() ?? Promise.resolve(undefined))
        .catch((e: unknown) => (e as Error).message)
        .then((problem) => {
          if (problem && !storeDown) updates.failWaiters(Errors.internal(`the store is unavailable: ${problem}`));
          storeDown = problem !== undefined;
        });
    }, STORE_WATCH_MS);
    storeWatch.unref();
    reaper = new TaskReaper(engine, projection, { hostId: opts.hostId, logger: log, mayRun: () => reaperLease.isHeld, log: stores.log, leases: stores.leases });
    reaper.start();
    if (opts.retentionDays !== undefined && janitorLease) {
      const lease = janitorLease;
      janitor = new RetentionJanitor(stores.log, stores.snapshots, projection, { days: opts.retentionDays, logger: log, mayRun: () => lease.isHeld });
      janitor.start();
    }
    for (const lease of leases) lease.start();
    return new Gateway(instanceId, projection, http, {
      updates,
      sse,
      ...(natsRpc ? { natsRpc } : {}),
      ...(stopPublishing ? { stopPublishing } : {}),
      ...(janitor ? { janitor } : {}),
      reaper,
      storeWatch,
      leases,
    });
  }

  async close(): Promise<void> {
    // Long-lived replies first, so that the HTTP server and the NATS subject can drain.
    clearInterval(this.parts.storeWatch);
    this.parts.sse.closeAll();
    this.parts.updates.close();
    await Promise.all([this.http.close(5_000), this.parts.natsRpc?.close(5_000)]);
    this.parts.stopPublishing?.();
    await this.parts.janitor?.stop();
    await this.parts.reaper.stop();
    await Promise.all(this.parts.leases.map((l) => l.stop()));
    await this.projection.close();
  }
}

/** A gateway whose read model is folded up to the head and that serves nothing yet. */
export interface FoldedGateway {
  /** The read model's fold now (for an agent in the same process to start from). */
  foldSnapshot(): FoldSnapshot;
  /** The same fold with the seq after which the read model read every message itself (`ReadModelFold`). */
  readModelFold(): ReadModelFold;
  /** Opens the HTTP server, the NATS subjects and the background jobs. */
  serve(): Promise<Gateway>;
  /** Closes the read model when `serve` will not be called. */
  close(): Promise<void>;
}

/** How often the gateway checks that its store can take a write (blocked UPDATES.get calls fail when not). */
const STORE_WATCH_MS = 500;

/** Damaged messages listed by /healthz at most (the count is always whole). */
const HEALTHZ_DAMAGE_LIST = 100;

/** The longest VM queue in the read model: the use of the per-VM queued-task limit. */
function longestQueue(projection: Projection): number {
  let longest = 0;
  for (const vm of projection.vms.values()) if (vm.queue.length > longest) longest = vm.queue.length;
  return longest;
}

async function healthz(res: ServerResponse, ctx: GatewayContext): Promise<void> {
  let status = 200;
  let body: object;
  try {
    const seq = await ctx.log.head();
    if (!ctx.projection.healthy) throw new Error('the read model could not fold the log');
    // Readable is not enough: a log that cannot take an append (e.g. a full disk) is unavailable.
    const writeProblem = await ctx.log.writeProblem?.();
    if (writeProblem) throw new Error(writeProblem);
    body = { status: 'ok', seq, mode: ctx.mode, instance_id: ctx.instanceId };
    // A damaged log still serves every VM it does not quarantine: up, but not all well.
    const { damage } = ctx.projection;
    if (damage.length > 0) {
      const quarantined = [...quarantinesOf(damage).keys()];
      body = { ...body, status: 'degraded', damaged: damage.slice(0, HEALTHZ_DAMAGE_LIST), damaged_count: damage.length, quarantined_vms: quarantined };
    }
  } catch (e) {
    status = 503;
    body = { status: 'unavailable', reason: (e as Error).message };
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
