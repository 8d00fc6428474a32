/**
 * The smallest NATS permissions each xenopsd role needs, for one prefix and host: what
 * `xenopsd --nats-permissions ROLE` prints (a nats-server `permissions` block) and what README's
 * "NATS security" shows. Derived from the same names the stores use, so it cannot drift from them;
 * the end-to-end test runs each role with exactly this set.
 *
 * What each role does on NATS (event subjects in layout 2, see core's event-subjects.ts):
 * - both read the prefix's event stream (ordered consumers, last message of a subject), the KV
 *   bucket and the object store of snapshots, and get their replies on their role's own inbox;
 * - the agent appends to VM streams (`<prefix>.ev.vm.>`) and its host's stream, answers the
 *   commands of its host (`<prefix>.cmd.<host>`) and those any agent may take (`<prefix>.cmd.%`),
 *   in queue group `xenops-agent`, and writes its own snapshot (`agent/<host>`);
 * - the gateway sends commands to any host's agent, appends only to the streams gateways alone
 *   write (UPDATES barriers and refreshes, `task/unrouted`; never a VM's or a host's, see
 *   docs/streams.md), writes the snapshots of its read model, publishes change records
 *   (`xenops.updates.>`, §9.4) and answers JSON-RPC on the §2.7 subject (queue group
 *   `xenops-gateway`); with `--retention-days` it also purges the event stream;
 * - the agent refreshes its own host's registration (`<prefix>_hosts`, key = its host id); the
 *   gateway reads the registry (HOST.list, placement) and takes and renews the leases of the
 *   cluster-wide jobs (`<prefix>_leases`);
 * - both answer the NATS micro protocol (`$SRV.*`, discovery.ts) and their status endpoint.
 * Creating the stream and the buckets is not part of either role: `xenopsd --nats-setup`.
 */
import { agentSnapshotKey } from '@xenops/actors';
import { ANY_AGENT, escapeSubjectToken, Streams } from '@xenops/core';
import { CHANGE_SUBJECT_ROOT, CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP } from '@xenops/gateway';
import { kvKey, natsNames } from '@xenops/store-nats';
import type { Role } from './config.js';
import { DISCOVERY_PROTOCOL_SUBJECTS, statusSubject } from './discovery.js';

export interface RolePermissionOptions {
  readonly role: Role;
  readonly prefix: string;
  /** The process's `--host-id`: its host stream and (agent) its command subject. */
  readonly hostId: string;
  /** The JSON-RPC subject (`--queue`); default org.xen.xapi.xenops.classic. */
  readonly rpcSubject?: string;
  /** The gateway runs with `--retention-days` (it then purges old events). */
  readonly retention?: boolean;
}

export interface NatsPermissions {
  readonly publish: readonly string[];
  /** Subjects, or `<subject> <queue group>` for queue subscriptions only. */
  readonly subscribe: readonly string[];
  /** nats-server `allow_responses`: one reply to each request received, to its reply subject. */
  readonly allowResponses: true;
}

/** The allow lists of `o.role` (role `all`, gateway and agent in one process: both). */
export function natsRolePermissions(o: RolePermissionOptions): NatsPermissions {
  const n = natsNames(o.prefix);
  const ev = (kind: string) => `${o.prefix}.ev.${escapeSubjectToken(kind)}`;
  const host = escapeSubjectToken(o.hostId);
  const consumers = (stream: string) => [
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
  ];
  const reading = [
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.${n.stream}`,
    `$JS.API.STREAM.MSG.GET.${n.stream}`,
    ...consumers(n.stream),
    `$JS.API.STREAM.INFO.${n.kvStream}`,
    `$JS.API.DIRECT.GET.${n.kvStream}.>`,
    `$JS.API.STREAM.INFO.${n.objectStream}`,
    `$JS.API.STREAM.MSG.GET.${n.objectStream}`,
    ...consumers(n.objectStream),
    // The host registry and the leases (API.md §9.7, issue 14): both open them.
    `$JS.API.STREAM.INFO.${n.hostsStream}`,
    `$JS.API.STREAM.INFO.${n.leasesStream}`,
  ];
  const snapshots = [`$O.${n.objectBucket}.>`, `$JS.API.STREAM.PURGE.${n.objectStream}`];
  const agent = [
    `${ev('vm')}.>`,
    `${ev('host')}.${host}`,
    `$KV.${n.kvBucket}.${kvKey(agentSnapshotKey(o.hostId))}`,
    ...snapshots,
    // Its own host's registration only: the registry's one writer per key.
    `$KV.${n.hostsBucket}.${kvKey(o.hostId)}`,
  ];
  const gateway = [
    n.eventSubject(Streams.task('unrouted')),
    n.eventSubject(Streams.evacuations()),
    `${ev('updates')}.>`,
    `${o.prefix}.cmd.*`,
    `$KV.${n.kvBucket}.>`,
    ...snapshots,
    // GET /backup (`xenops backup`): a snapshot of the event stream, acked chunk by chunk.
    `$JS.API.STREAM.SNAPSHOT.${n.stream}`,
    `$JS.SNAPSHOT.ACK.${n.stream}.>`,
    ...(o.retention ? [`$JS.API.STREAM.PURGE.${n.stream}`] : []),
    `${CHANGE_SUBJECT_ROOT}.>`,
    // HOST.list and placement read the registry; the cluster-wide jobs' leases are taken and renewed.
    `$JS.API.DIRECT.GET.${n.hostsStream}.>`,
    `$JS.API.DIRECT.GET.${n.leasesStream}.>`,
    `$KV.${n.leasesBucket}.>`,
  ];
  const serveAgent = [`${n.commandSubject(o.hostId)} ${n.queueGroup}`, `${n.commandSubject(ANY_AGENT)} ${n.queueGroup}`];
  const serveGateway = `${o.rpcSubject ?? CLASSIC_QUEUE} ${GATEWAY_QUEUE_GROUP}`;
  const inbox = `${n.inboxPrefix(o.role)}.>`;
  const isAgent = o.role !== 'gateway';
  const isGateway = o.role !== 'agent';
  return {
    publish: unique([...reading, ...(isAgent ? agent : []), ...(isGateway ? gateway : [])]),
    subscribe: unique([
      inbox,
      ...(isAgent ? serveAgent : []),
      ...(isGateway ? [serveGateway] : []),
      // NATS-native discovery (discovery.ts): the micro protocol's subjects and the status endpoint.
      ...DISCOVERY_PROTOCOL_SUBJECTS,
      statusSubject(o.prefix, o.role, o.hostId),
    ]),
    allowResponses: true,
  };
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

/** A nats-server configuration `permissions` block (for a user of an `authorization` block). */
export function formatNatsPermissions(p: NatsPermissions, comment?: string): string {
  const list = (xs: readonly string[]) => xs.map((x) => `      ${JSON.stringify(x)}`).join('\n');
  return [
    ...(comment ? [`# ${comment}`] : []),
    'permissions: {',
    '  publish: {',
    '    allow: [',
    list(p.publish),
    '    ]',
    '  }',
    '  subscribe: {',
    '    allow: [',
    list(p.subscribe),
    '    ]',
    '  }',
    '  allow_responses: true',
    '}',
    '',
  ].join('\n');
}

/** What `xenopsd --nats-permissions ROLE` prints: the block, headed by the flags it is for. */
export function natsPermissionsText(o: RolePermissionOptions): string {
  const flags = [
    `--role ${o.role}`,
    `--nats-prefix ${o.prefix}`,
    `--host-id ${o.hostId}`,
    ...(o.rpcSubject ? [`--queue ${o.rpcSubject}`] : []),
    ...(o.retention ? ['--retention-days ...'] : []),
  ];
  return formatNatsPermissions(natsRolePermissions(o), `xenopsd ${flags.join(' ')}`);
}
