/**
 * NATS-native discovery: every xenopsd process on NATS registers as a NATS service (the "micro"
 * protocol: `$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`), so standard NATS tooling
 * (`nats micro ls|info|stats xenopsd`) lists the cluster's gateways and agents and monitors them
 * without knowing their HTTP addresses. The service's metadata says what each process is (role,
 * host id, prefix) and which subjects it serves; its one endpoint, `status`, answers on a subject
 * of its own with what the process is doing now.
 */
import { Svcm, type Service } from '@nats-io/services';
import { escapeSubjectToken } from '@xenops/core';
import type { NatsStores } from '@xenops/store-nats';
import type { Role } from './config.js';

/** The name every xenopsd process registers under (micro names: letters, digits, `-`, `_`). */
export const DISCOVERY_SERVICE_NAME = 'xenopsd';

/** The subjects the micro protocol answers for a service named {@link DISCOVERY_SERVICE_NAME}. */
export const DISCOVERY_PROTOCOL_SUBJECTS: readonly string[] = ['$SRV.*', `$SRV.*.${DISCOVERY_SERVICE_NAME}`, `$SRV.*.${DISCOVERY_SERVICE_NAME}.*`];

/** Where a process's `status` endpoint answers: one subject per prefix, role and host. */
export function statusSubject(prefix: string, role: Role, hostId: string): string {
  return `${prefix}.svc.${escapeSubjectToken(role)}.${escapeSubjectToken(hostId)}`;
}

export interface DiscoveryOptions {
  readonly nc: NatsStores['nats'];
  readonly role: Role;
  readonly hostId: string;
  readonly prefix: string;
  readonly version: string;
  /** The subjects this process serves, by what they are for (`rpc`, `commands`, ...): metadata. */
  readonly serves: Readonly<Record<string, string>>;
  /** What the process is doing now, for the `status` endpoint (JSON-able). */
  readonly status: () => Record<string, unknown>;
  readonly log: (line: string) => void;
}

export interface Discovery {
  /** The service's instance id (`nats micro info xenopsd <id>`). */
  readonly id: string;
  /** Leaves the registry: the process no longer answers `$SRV.*`. */
  stop(): Promise<void>;
}

export async function registerForDiscovery(o: DiscoveryOptions): Promise<Discovery> {
  const started = Date.now();
  const service: Service = await new Svcm(o.nc).add({
    name: DISCOVERY_SERVICE_NAME,
    version: o.version,
    description: `xenops ${o.role} of host ${o.hostId} (prefix ${o.prefix})`,
    metadata: { role: o.role, host_id: o.hostId, prefix: o.prefix, pid: String(process.pid), ...o.serves },
  });
  const subject = statusSubject(o.prefix, o.role, o.hostId);
  service.addEndpoint('status', {
    subject,
    metadata: { description: 'what this process is doing now (JSON)' },
    handler: (err, msg) => {
      if (err) {
        o.log(`discovery: status endpoint failed: ${err.message}`);
        return;
      }
      try {
        msg.respond(JSON.stringify({ role: o.role, host_id: o.hostId, version: o.version, pid: process.pid, uptime_s: (Date.now() - started) / 1000, ...o.status() }));
      } catch (e) {
        msg.respondError(500, (e as Error).message);
      }
    },
  });
  const { id } = service.info();
  o.log(`discovery: registered as NATS service ${DISCOVERY_SERVICE_NAME} ${id} (status on ${subject})`);
  return {
    id,
    async stop() {
      if (service.isStopped || o.nc.isClosed()) return;
      await service.stop().catch((e: unknown) => o.log(`discovery: could not leave the registry: ${(e as Error).message}`));
    },
  };
}
