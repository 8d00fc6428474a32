/** core's connection recipe (credentials, TLS, typed failures) with nats.js's Node transport. */
import * as transport from '@nats-io/transport-node';
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import { connectNatsWith, type NatsSecurityOptions } from '@xenops/core';

/**
 * Connects once to `servers` (comma-separated URLs): an authentication or TLS failure, or no
 * server reachable, rejects at once with a typed error (NatsAuthenticationError,
 * NatsUnreachableError) instead of retrying. `options` adds to or overrides the connection options.
 */
export function connectNats(servers: string, security: NatsSecurityOptions, options: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  return connectNatsWith(transport, servers, security, options);
}
