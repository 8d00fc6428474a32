/**
 * A client's NATS connection: core's recipe (credentials and TLS files, typed failures) with
 * nats.js loaded on the first connection only, so that a client speaking HTTP never loads it.
 */
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import { connectNatsWith, type NatsSecurityOptions } from '@xenops/core';

export type { NatsConnection };

/** Connects once to `servers` (comma-separated URLs); see core's `connectNatsWith`. */
export async function connectNats(servers: string, security: NatsSecurityOptions, options: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  return connectNatsWith(await import('@nats-io/transport-node'), servers, security, options);
}
