import { mkdirSync, readFileSync } from 'node:fs';
import { createBackend, HostAgent } from '@xenops/actors';
import { CONSOLE_ASSETS_DIR, consoleIsBuilt } from '@xenops/console';
import { withCheckedAppends } from '@xenops/core';
import { appendLatencyHistogram, CLASSIC_QUEUE, Gateway, isLoopbackAddress, type FoldedGateway, type GatewayOptions, type GatewayStores } from '@xenops/gateway';
import { natsNames, openNatsStores } from '@xenops/store-nats';
import { lockDataDir, openEmbeddedStores } from '@xenops/store-sqlite';
import { ConfigError, readToken, type DaemonConfig } from './config.js';
import { registerForDiscovery, type Discovery } from './discovery.js';
import { startHostHeartbeat, type HostHeartbeat } from './host-heartbeat.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface Daemon {
  readonly gateway?: Gateway;
  readonly agent?: HostAgent;
  /** Graceful stop: no new requests, in-flight work finished (or failed at the drain timeout), stores flushed and closed. */
  close(): Promise<void>;
}

/** Starts the parts of xenopsd that the configuration asks for. */
export async function startDaemon(config: DaemonConfig, log: (line: string) => void, onShutdownRequest: () => void): Promise<Daemon> {
  const token = config.tokenFile ? readToken(config.tokenFile) : undefined;
  const serveHttp = config.role !== 'agent';
  if (serveHttp && config.listen && !isLoopbackAddress(config.listen.host) && !token) {
    throw new ConfigError(`refusing to listen on non-loopback address ${config.listen.host} without --token-file (requests would be unauthenticated)`);
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // One service per data dir: every process that uses it (the embedded store, the Unix socket)
  // holds its lock; a NATS agent keeps nothing there and takes none.
  const lock = !config.nats || serveHttp ? lockDataDir(config.dataDir) : undefined;

  let opened: GatewayStores;
  try {
    opened = config.nats
      ? await openNatsStores({ ...config.nats, name: `xenopsd ${config.role} ${config.hostId}`, role: config.role, log })
    : await openEmbeddedStores({ dataDir: config.dataDir, log });
  } catch (e) {
    lock?.release();
    throw e;
  }
  // Every append must read back to itself: one bad event cannot make the log unreadable. Every
  // writer of this process appends through that gate, so it is also where append latency is seen.
  const appendLatency = appendLatencyHistogram();
  const stores = withCheckedAppends(opened, appendLatency.observeAppend);
  log(`store: ${stores.mode}${config.nats ? ` at ${config.nats.servers} (prefix ${config.nats.prefix})` : ` in ${config.dataDir}`}`);

  let agent: HostAgent | undefined;
  let gateway: Gateway | undefined;
  let discovery: Discovery | undefined;
  let heartbeat: HostHeartbeat | undefined;
  let folded: FoldedGateway | undefined;
  // Agent and read model in one process fold the log once: the read model folds it (from the
  // stored snapshot, if any) and the agent starts from that fold, reading only what came after,
  // unless its own snapshot is newer.
  const both = config.role !== 'gateway' && serveHttp;
  try {
    const gatewayOptions = (): GatewayOptions => ({
      stores,
      hostId: config.hostId,
      version: VERSION,
      ...(config.listen ? { listen: config.listen } : {}),
      ...(config.socketPath ? { socketPath: config.socketPath } : {}),
      socketMode: config.socketMode,
      ...(token ? { token } : {}),
      ...(config.queue ? { natsQueue: config.queue } : {}),
      ...(config.retentionDays !== undefined ? { retentionDays: config.retentionDays } : {}),
      limits: config.limits,
      placement: config.placement,
      hostDownAfterMs: config.hostDownAfterS * 1000,
      ...(config.hostScope !== undefined ? { hostScope: config.hostScope } : {}),
      logger: log,
      onShutdownRequest,
      metricFamilies: [appendLatency],
      ...(consoleIsBuilt() ? { consoleDir: CONSOLE_ASSETS_DIR } : {}),
    });
    if (serveHttp) folded = await Gateway.fold(gatewayOptions());
    const readModel = folded;
    const readModelFold = both && readModel ? async () => readModel.foldSnapshot() : undefined;
    if (config.role !== 'gateway') {
      agent = await HostAgent.start({
        stores,
        hostId: config.hostId,
        backend: createBackend(config.backend, config.qemu ? { qemu: config.qemu } : {}),
        dataDir: config.dataDir,
        crashLoopWindowS: config.crashLoopWindowS,
        poolSize: config.poolSize,
        maxQueuedTasks: config.limits.maxQueuedTasks,
        logger: log,
        loadFoldSnapshot: readModelFold,
        ...(both && readModel ? { foldOfReadModel: async () => readModel.readModelFold() } : {}),
      });
    }
    if (folded) gateway = await folded.serve();
    if (agent) {
      const gw = gateway;
      heartbeat = await startHostHeartbeat({
        hosts: stores.hosts,
        agent,
        version: VERSION,
        addresses: () => [
          ...(gw?.tcpAddress ? [`${gw.tcpAddress.host}:${gw.tcpAddress.port}`] : []),
          ...(gw?.socketPath ? [`unix:${gw.socketPath}`] : []),
        ],
        log,
      });
    }
    if (config.nats && opened.nats) {
      const names = natsNames(config.nats.prefix);
      discovery = await registerForDiscovery({
        nc: opened.nats,
        role: config.role,
        hostId: config.hostId,
        prefix: config.nats.prefix,
        version: VERSION,
        serves: {
          ...(gateway ? { rpc_subject: config.queue ?? CLASSIC_QUEUE } : {}),
          ...(gateway?.tcpAddress ? { http: `${gateway.tcpAddress.host}:${gateway.tcpAddress.port}` } : {}),
          ...(agent ? { command_subject: names.commandSubject(config.hostId), backend: config.backend } : {}),
        },
        status: () => ({ store: stores.mode, ...(agent ? { backend: config.backend } : {}) }),
        log,
      });
    }
  } catch (e) {
    await heartbeat?.stop().catch(() => {});
    await gateway?.close().catch(() => {});
    if (!gateway) await folded?.close().catch(() => {});
    await agent?.close(0).catch(() => {});
    await stores.close().catch(() => {});
    lock?.release();
    throw e;
  }

  return {
    ...(gateway ? { gateway } : {}),
    ...(agent ? { agent } : {}),
    async close() {
      await discovery?.stop();
      await heartbeat?.stop();
      await gateway?.close();
      await agent?.close();
      await stores.close();
      lock?.release();
    },
  };
}
