/**
 * The agent's registration in the host registry (API.md §9.7), refreshed every few seconds for as
 * long as the agent runs. Only this host's agent writes it (docs/streams.md, "Outside the log"); a
 * gateway reads it and calls the host Down once it is older than `--host-down-after-s`.
 */
import type { HostAgent } from '@xenops/actors';
import type { HostRegistry } from '@xenops/core';

/** How often an agent refreshes its registration: well within the 15 s of §9.7. */
export const HOST_HEARTBEAT_MS = 2_000;

export interface HostHeartbeatOptions {
  readonly hosts: HostRegistry;
  readonly agent: HostAgent;
  readonly version: string;
  /** Where this host can be reached (its gateway's listen address and socket, when it has one). */
  readonly addresses: () => readonly string[];
  readonly log: (line: string) => void;
  readonly everyMs?: number;
}

export interface HostHeartbeat {
  stop(): Promise<void>;
}

export async function startHostHeartbeat(o: HostHeartbeatOptions): Promise<HostHeartbeat> {
  const startedMs = Date.now();
  const { backend, facts } = await o.agent.hostFacts();
  let failing = false;
  const refresh = async () => {
    try {
      await o.hosts.register({
        id: o.agent.hostId,
        backend,
        version: o.version,
        startedMs,
        addresses: o.addresses(),
        cpus: facts.host.cpu_info.cpu_count,
        memoryTotal: facts.totalMemoryMib * 1024 * 1024,
      });
      if (failing) o.log(`host registry: the registration of host ${o.agent.hostId} is refreshed again`);
      failing = false;
    } catch (e) {
      if (!failing) o.log(`host registry: cannot refresh the registration of host ${o.agent.hostId}: ${(e as Error).message}`);
      failing = true;
    }
  };
  // The first registration is made before the agent counts as started: HOST.list shows it at once.
  await refresh();
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= refresh().finally(() => (running = undefined));
  }, o.everyMs ?? HOST_HEARTBEAT_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
