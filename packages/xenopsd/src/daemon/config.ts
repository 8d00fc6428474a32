import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, type QemuBackendOptions } from '@xenops/actors';
import { PLACEMENT_POLICIES, type GatewayLimits, type PlacementPolicy } from '@xenops/gateway';
import { LIMIT_OPTIONS, LIMITS_USAGE, parseLimitFlags } from './limit-flags.js';

export type Role = 'gateway' | 'agent' | 'all';

/** The NATS server, namespace and security files of the command line. */
export interface NatsFlags {
  readonly servers: string;
  readonly prefix: string;
  /** `--nats-replicas`: copies of the stream and buckets when they are created. */
  readonly replicas?: number;
  readonly credsFile?: string;
  readonly nkeyFile?: string;
  readonly tlsCaFile?: string;
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
}

/** `--restore FILE`: where to (exactly one of `dataDir` and `nats`), and how to report. */
export interface RestoreAction {
  readonly action: 'restore';
  readonly file: string;
  readonly dataDir?: string;
  /** The prefix is absent unless `--nats-prefix` was given: the backup's is the default. */
  readonly nats?: Omit<NatsFlags, 'prefix'> & { readonly prefix?: string };
  /** `--json`: progress and outcome as JSON lines on stdout, nothing on stderr. */
  readonly json: boolean;
}

/** Everything xenopsd needs to start, resolved from flags, environment and defaults (API.md §2.1). */
export interface DaemonConfig {
  readonly listen?: { readonly host: string; readonly port: number };
  readonly socketPath?: string;
  readonly socketMode: number;
  readonly dataDir: string;
  readonly hostId: string;
  readonly nats?: NatsFlags;
  readonly role: Role;
  /** NATS mode: the JSON-RPC subject (§2.7); absent = env XENOPS_QUEUE, else org.xen.xapi.xenops.classic. */
  readonly queue?: string;
  readonly tokenFile?: string;
  readonly poolSize: number;
  /** The hypervisor backend the agent drives (`--backend`, default simulator). */
  readonly backend: string;
  /** `--qemu-binary`, `--qemu-accel`, `--qemu-sr-dir`, `--qemu-network` (API.md §8.4); only with `--backend qemu`. */
  readonly qemu?: QemuBackendOptions;
  /** Engine setting `crash_loop_window_s` (API.md §7.5; `--crash-loop-window-s`, default 120). */
  readonly crashLoopWindowS: number;
  /** Retention period in days; absent: keep every event. */
  readonly retentionDays?: number;
  /** Resource limits and HTTP timeouts (`--max-*`, `--*-timeout`). */
  readonly limits: GatewayLimits;
  /** `--placement`: where VM.start / VM.resume put an unowned VM (API.md §9.7; default local). */
  readonly placement: PlacementPolicy;
  /** `--host-down-after-s`: a host whose registration is older is Down (§9.7; default 15). */
  readonly hostDownAfterS: number;
  /** `--host-scope ID`: the gateway shows only that host's VMs. */
  readonly hostScope?: string;
  /**
   * A one-shot action instead of serving: create the prefix's NATS resources and exit
   * (`--nats-setup`), print the NATS permissions of a role and exit (`--nats-permissions`), or
   * restore a backup into a new store and exit (`--restore`).
   */
  readonly oneShot?:
    | { readonly action: 'nats-setup' }
    | { readonly action: 'nats-permissions'; readonly role: Role; readonly prefix: string }
    | RestoreAction;
}

/** A command-line or configuration mistake: printed as one line with a hint, exit status 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const USAGE = `Usage: xenopsd [options]

Runs the xenops service: the gateway (XML-RPC / JSON-RPC over HTTP and a Unix socket) and the
host agent with its backend (the simulator by default). Without --nats everything runs in this process with a
durable embedded log in --data-dir; with --nats the log, snapshots and commands live in NATS
JetStream and --role splits gateway and agent into separate processes.

Options:
  --listen HOST:PORT    TCP address (env XENOPS_LISTEN; default 127.0.0.1:8440; "off" disables TCP)
  --socket PATH         Unix socket (default <data-dir>/xenopsd.sock; "off" disables it)
  --socket-mode MODE    octal file mode of the socket (default 0600)
  --data-dir DIR        state directory (env XENOPS_DATA_DIR; default $XDG_STATE_HOME/xenops-ts)
  --host-id ID          this host's id (default: the OS host name)
  --token-file PATH     require "Authorization: Bearer <first line of PATH>" on TCP requests;
                        mandatory when --listen is not a loopback address
  --nats URL            use NATS JetStream at URL (env XENOPS_NATS_URL), e.g. nats://127.0.0.1:4222
  --nats-prefix NAME    namespace of the NATS stream, KV bucket and subjects (default xenops)
  --nats-replicas N     copies JetStream keeps of the stream, KV bucket and object store when
                        they are created: 1 to 5 (default 1; 3 in a three-server NATS cluster)
  --nats-creds FILE     NATS credentials file
  --nats-nkey FILE      NATS nkey seed file
  --nats-tls-ca FILE    CA certificate for a TLS NATS server
  --nats-tls-cert FILE  client certificate, for a NATS server that verifies clients
  --nats-tls-key FILE   the client certificate's private key
  --role ROLE           gateway, agent or all (default all; gateway/agent need --nats)
  --queue NAME          NATS subject of the JSON-RPC service (env XENOPS_QUEUE;
                        default org.xen.xapi.xenops.classic)
  --pool-size N         operations running at once on this host (default 16)
  --backend NAME        the agent's hypervisor backend: ${BACKEND_NAMES.join(', ')} (default simulator)
  --qemu-binary PATH    with --backend qemu: the emulator (default qemu-system-x86_64 from PATH)
  --qemu-accel ACCEL    with --backend qemu: tcg (default) or kvm
  --qemu-sr-dir DIR     with --backend qemu: the directory where ["VDI", name] disks are files
  --qemu-network MODE   with --backend qemu: user (every VIF on a user-mode network, default) or
                        bridge (a tap on the VIF's bridge, through qemu-bridge-helper)
  --qemu-migration-address IP
                        with --backend qemu: where this host's QEMU listens for a live migration's
                        stream (default 127.0.0.1; give an address the other hosts reach)
  --crash-loop-window-s S
                        a guest that crashes within S seconds of its start is not restarted
                        (on_crash Start becomes Shutdown; default 120)
  --placement POLICY    where VM.start / VM.resume put a VM no host owns, unless the call names
                        a host: local (this --host-id, default) or least-loaded (the Up host
                        with the most free memory that fits, then the fewest running VMs)
  --host-down-after-s S a host whose agent has not refreshed its registration for S seconds
                        is Down (default 15)
  --host-scope ID       VM.list, VM.stat and UPDATES show only the VMs of host ID (a host's
                        local view, as a xapi-style toolstack expects)
  --retention-days D    delete log events older than D days once a snapshot covers them
                        (default: keep every event)
  --nats-setup          create the NATS stream, KV bucket and object store of --nats-prefix
                        (with credentials allowed to) and exit; roles need not create them
  --nats-permissions ROLE
                        print the nats-server permissions ROLE (gateway, agent or all) needs
                        for --nats-prefix, --host-id, --queue and --retention-days, and exit
  --restore FILE        restore the backup FILE (from xenops backup) into a new store and exit:
                        an empty --data-dir DIR, or --nats URL where the backup's prefix is free
                        (--nats-prefix, if given, must be the backup's); nothing is overwritten
  --json                with --restore: progress and outcome as JSON lines on stdout
  -h, --help            show this help
  --version             print the version

${LIMITS_USAGE}
Exit status: 0 stopped cleanly, 1 cannot start, stopped with an error or not within 4.5 s of
SIGTERM/SIGINT (a second signal exits at once), 2 bad command line
or configuration, 3 NATS refused access (credentials, TLS or permissions), 4 NATS unreachable,
65 the embedded store's file (or the backup to restore) is damaged or not a xenops file,
66 the backup to restore does not exist, 73 the restore's target is not empty, 75 the data dir
is in use by another xenopsd.

Examples:
  xenopsd                                          # embedded, http://127.0.0.1:8440
  xenopsd --listen 127.0.0.1:9000 --data-dir /tmp/x
  xenopsd --nats nats://127.0.0.1:4222 --role agent --host-id host-a
`;

export function parseDaemonArgs(argv: readonly string[], env: NodeJS.ProcessEnv): DaemonConfig | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        socket: { type: 'string' },
        'socket-mode': { type: 'string' },
        'data-dir': { type: 'string' },
        'host-id': { type: 'string' },
        'token-file': { type: 'string' },
        nats: { type: 'string' },
        'nats-prefix': { type: 'string' },
        'nats-replicas': { type: 'string' },
        'nats-creds': { type: 'string' },
        'nats-nkey': { type: 'string' },
        'nats-tls-ca': { type: 'string' },
        'nats-tls-cert': { type: 'string' },
        'nats-tls-key': { type: 'string' },
        'nats-setup': { type: 'boolean' },
        'nats-permissions': { type: 'string' },
        restore: { type: 'string' },
        json: { type: 'boolean' },
        role: { type: 'string' },
        queue: { type: 'string' },
        'pool-size': { type: 'string' },
        backend: { type: 'string' },
        'qemu-binary': { type: 'string' },
        'qemu-accel': { type: 'string' },
        'qemu-sr-dir': { type: 'string' },
        'qemu-migration-address': { type: 'string' },
        'qemu-network': { type: 'string' },
        'crash-loop-window-s': { type: 'string' },
        'retention-days': { type: 'string' },
        placement: { type: 'string' },
        'host-down-after-s': { type: 'string' },
        'host-scope': { type: 'string' },
        ...LIMIT_OPTIONS,
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.version) return 'version';

  const dataDir = resolve(v['data-dir'] ?? env.XENOPS_DATA_DIR ?? defaultDataDir(env));
  const listenText = v.listen ?? env.XENOPS_LISTEN ?? '127.0.0.1:8440';
  const socketText = v.socket ?? join(dataDir, 'xenopsd.sock');
  const natsUrl = v.nats ?? env.XENOPS_NATS_URL;
  const role = (v.role ?? 'all') as Role;
  if (!['gateway', 'agent', 'all'].includes(role)) throw new ConfigError(`--role must be gateway, agent or all, not "${v.role}"`);
  if (role !== 'all' && !natsUrl) throw new ConfigError(`--role ${role} needs --nats: without NATS the gateway and the agent share one process`);
  const prefix = v['nats-prefix'] ?? 'xenops';
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new ConfigError(`--nats-prefix may contain only letters, digits, "_" and "-": "${prefix}"`);
  const replicasText = v['nats-replicas'];
  if (replicasText !== undefined && !/^[1-5]$/.test(replicasText)) throw new ConfigError(`--nats-replicas must be a number of copies from 1 to 5, not "${replicasText}"`);
  if (replicasText !== undefined && !natsUrl) throw new ConfigError('--nats-replicas needs --nats URL');
  const socketMode = parseMode(v['socket-mode'] ?? '0600');
  const poolSize = parsePositiveInt('--pool-size', v['pool-size'] ?? '16');
  const backend = v.backend ?? 'simulator';
  if (!(BACKEND_NAMES as readonly string[]).includes(backend)) throw new ConfigError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, not "${backend}"`);
  const qemu = qemuOptions(backend, v);
  const crashLoopText = v['crash-loop-window-s'] ?? '120';
  if (!/^\d+(\.\d+)?$/.test(crashLoopText)) throw new ConfigError(`--crash-loop-window-s expects a number of seconds (e.g. 120 or 0.5), got "${crashLoopText}"`);
  const retention = v['retention-days'];
  if (retention !== undefined && !(/^\d+(\.\d+)?$/.test(retention))) {
    throw new ConfigError(`--retention-days expects a number of days (e.g. 30 or 0.5), got "${retention}"`);
  }
  const limits = parseLimitFlags(v);
  const placement = (v.placement ?? 'local') as PlacementPolicy;
  if (!PLACEMENT_POLICIES.includes(placement)) throw new ConfigError(`--placement must be ${PLACEMENT_POLICIES.join(' or ')}, not "${v.placement}"`);
  const downAfterText = v['host-down-after-s'] ?? '15';
  if (!/^\d+(\.\d+)?$/.test(downAfterText) || Number(downAfterText) <= 0) {
    throw new ConfigError(`--host-down-after-s expects a positive number of seconds (e.g. 15), got "${downAfterText}"`);
  }
  const hostScope = v['host-scope'];
  if (hostScope === '') throw new ConfigError('--host-scope must not be empty');
  const hostId = v['host-id'] ?? hostname();
  if (hostId === '') throw new ConfigError('--host-id must not be empty');
  const permissionsRole = v['nats-permissions'] as Role | undefined;
  if (permissionsRole !== undefined && !['gateway', 'agent', 'all'].includes(permissionsRole)) {
    throw new ConfigError(`--nats-permissions must be gateway, agent or all, not "${permissionsRole}"`);
  }
  if (v['nats-setup'] && permissionsRole) throw new ConfigError('--nats-setup and --nats-permissions are two separate actions: give one');
  if (v['nats-setup'] && !natsUrl) throw new ConfigError('--nats-setup needs --nats URL');
  if (!v['nats-tls-cert'] !== !v['nats-tls-key']) throw new ConfigError('a TLS client certificate needs both --nats-tls-cert and --nats-tls-key');
  const security = {
    ...(v['nats-creds'] ? { credsFile: v['nats-creds'] } : {}),
    ...(v['nats-nkey'] ? { nkeyFile: v['nats-nkey'] } : {}),
    ...(v['nats-tls-ca'] ? { tlsCaFile: v['nats-tls-ca'] } : {}),
    ...(v['nats-tls-cert'] ? { tlsCertFile: v['nats-tls-cert'] } : {}),
    ...(v['nats-tls-key'] ? { tlsKeyFile: v['nats-tls-key'] } : {}),
  };
  const restore = v.restore !== undefined ? restoreAction(v.restore, v['data-dir'], v.nats, v['nats-prefix'], security, v.json === true) : undefined;
  if (restore && (v['nats-setup'] || permissionsRole)) throw new ConfigError('--restore is an action of its own: give it without --nats-setup or --nats-permissions');
  if (v.json && !restore) throw new ConfigError('--json goes with --restore only');

  return {
    ...(listenText === 'off' ? {} : { listen: parseListen(listenText) }),
    ...(socketText === 'off' ? {} : { socketPath: resolve(socketText) }),
    socketMode,
    dataDir,
    hostId,
    ...(natsUrl
      ? {
          nats: {
            servers: natsUrl,
            prefix,
            ...(replicasText !== undefined ? { replicas: Number(replicasText) } : {}),
            ...security,
          },
        }
      : {}),
    role,
    ...(v.queue ? { queue: v.queue } : {}),
    ...(v['token-file'] ? { tokenFile: resolve(v['token-file']) } : {}),
    poolSize,
    backend,
    ...(qemu ? { qemu } : {}),
    crashLoopWindowS: Number(crashLoopText),
    ...(retention !== undefined ? { retentionDays: Number(retention) } : {}),
    limits,
    placement,
    hostDownAfterS: Number(downAfterText),
    ...(hostScope !== undefined ? { hostScope } : {}),
    ...(v['nats-setup'] ? { oneShot: { action: 'nats-setup' as const } } : {}),
    ...(permissionsRole ? { oneShot: { action: 'nats-permissions' as const, role: permissionsRole, prefix } } : {}),
    ...(restore ? { oneShot: restore } : {}),
  };
}

/**
 * `--restore FILE` and its target, given on the command line only (never taken from the
 * environment or a default: a restore writes where it is told).
 */
function restoreAction(
  file: string,
  dataDir: string | undefined,
  natsUrl: string | undefined,
  prefix: string | undefined,
  security: Omit<NatsFlags, 'servers' | 'prefix'>,
  json: boolean,
): RestoreAction {
  if (file === '') throw new ConfigError('--restore needs the backup FILE');
  if (dataDir !== undefined && natsUrl !== undefined) throw new ConfigError('give either --data-dir DIR (embedded) or --nats URL (NATS), not both');
  if (dataDir === undefined && natsUrl === undefined) throw new ConfigError('restore needs a target: --data-dir DIR for an embedded store, or --nats URL for NATS');
  return {
    action: 'restore',
    file: resolve(file),
    ...(dataDir !== undefined ? { dataDir: resolve(dataDir) } : { nats: { servers: natsUrl!, ...(prefix !== undefined ? { prefix } : {}), ...security } }),
    json,
  };
}

/** The `--qemu-*` flags, checked; given with another backend they are a mistake. */
function qemuOptions(backend: string, v: Record<string, unknown>): QemuBackendOptions | undefined {
  const flags = ['qemu-binary', 'qemu-accel', 'qemu-sr-dir', 'qemu-network', 'qemu-migration-address'] as const;
  const given = flags.filter((f) => v[f] !== undefined);
  if (backend !== 'qemu') {
    if (given.length > 0) throw new ConfigError(`--${given[0]} goes with --backend qemu`);
    return undefined;
  }
  const accel = (v['qemu-accel'] as string | undefined) ?? 'tcg';
  if (accel !== 'tcg' && accel !== 'kvm') throw new ConfigError(`--qemu-accel must be tcg or kvm, not "${accel}"`);
  const network = (v['qemu-network'] as string | undefined) ?? 'user';
  if (network !== 'user' && network !== 'bridge') throw new ConfigError(`--qemu-network must be user or bridge, not "${network}"`);
  const binary = v['qemu-binary'] as string | undefined;
  if (binary === '') throw new ConfigError('--qemu-binary must not be empty');
  const srDir = v['qemu-sr-dir'] as string | undefined;
  if (srDir === '') throw new ConfigError('--qemu-sr-dir must not be empty');
  const migrationAddress = v['qemu-migration-address'] as string | undefined;
  if (migrationAddress !== undefined && !isIP(migrationAddress)) throw new ConfigError(`--qemu-migration-address must be an IP address, not "${migrationAddress}"`);
  return {
    accel,
    network,
    ...(binary ? { binary } : {}),
    ...(srDir ? { srDir: resolve(srDir) } : {}),
    ...(migrationAddress ? { migrationAddress } : {}),
  };
}

function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'xenops-ts');
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`--listen expects HOST:PORT (e.g. 127.0.0.1:8440), got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}

function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new ConfigError(`--socket-mode expects an octal mode such as 0600, got "${text}"`);
  return parseInt(text, 8);
}

function parsePositiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} expects a whole number of at least 1, got "${text}"`);
  return n;
}

/** The token is the file's first line; an unreadable or empty file is a configuration error. */
export function readToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read --token-file ${path}: ${(e as Error).message}`);
  }
  const token = text.split(/\r?\n/, 1)[0]!.trim();
  if (!token) throw new ConfigError(`--token-file ${path} is empty: put the token on its first line`);
  return token;
}
