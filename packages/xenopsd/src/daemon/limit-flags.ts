/** The xenopsd flags of the resource limits and HTTP timeouts (README "Limits"). */
import { DEFAULT_LIMITS, type GatewayLimits } from '@xenops/gateway';
import { ConfigError } from './config.js';

export const LIMIT_OPTIONS = {
  'max-connections': { type: 'string' },
  'max-updates-waiters': { type: 'string' },
  'max-sse-clients': { type: 'string' },
  'max-nats-requests': { type: 'string' },
  'max-queued-tasks': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
} as const;

const d = DEFAULT_LIMITS;
export const LIMITS_USAGE = `
Limits (README "Limits"; over a limit the client gets an error naming it):
  --max-connections N     open connections per listener, TCP and Unix socket each (default ${d.maxConnections})
  --max-updates-waiters N UPDATES.get calls blocked at once (default ${d.maxUpdatesWaiters})
  --max-sse-clients N     GET /events streams at once (default ${d.maxSseClients})
  --max-nats-requests N   requests on the NATS RPC subject handled at once (default ${d.maxNatsRequests})
  --max-queued-tasks N    tasks waiting on one VM's queue (default ${d.maxQueuedTasks}; the agent enforces it)
  --headers-timeout S     seconds to receive a request's head (default ${d.headersTimeoutMs / 1000})
  --request-timeout S     seconds to receive a whole request, head and body (default ${d.requestTimeoutMs / 1000})
  --keep-alive-timeout S  seconds an idle keep-alive connection stays open (default ${d.keepAliveTimeoutMs / 1000})
`;

type LimitValues = { readonly [K in keyof typeof LIMIT_OPTIONS]?: string };

function count(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`--${flag} expects a whole number of at least 1, got "${text}"`);
  }
  return n;
}

function seconds(flag: string, text: string | undefined, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const ms = Math.round(Number(text) * 1000);
  // Node's timers take at most 2^31-1 ms (24.8 days).
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || ms < 1 || ms > 2 ** 31 - 1) {
    throw new ConfigError(`--${flag} expects a positive number of seconds (e.g. 20 or 0.5), got "${text}"`);
  }
  return ms;
}

export function parseLimitFlags(v: LimitValues): GatewayLimits {
  const limits: GatewayLimits = {
    maxConnections: count('max-connections', v['max-connections'], d.maxConnections),
    maxUpdatesWaiters: count('max-updates-waiters', v['max-updates-waiters'], d.maxUpdatesWaiters),
    maxSseClients: count('max-sse-clients', v['max-sse-clients'], d.maxSseClients),
    maxNatsRequests: count('max-nats-requests', v['max-nats-requests'], d.maxNatsRequests),
    maxQueuedTasks: count('max-queued-tasks', v['max-queued-tasks'], d.maxQueuedTasks),
    headersTimeoutMs: seconds('headers-timeout', v['headers-timeout'], d.headersTimeoutMs),
    requestTimeoutMs: seconds('request-timeout', v['request-timeout'], d.requestTimeoutMs),
    keepAliveTimeoutMs: seconds('keep-alive-timeout', v['keep-alive-timeout'], d.keepAliveTimeoutMs),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(
      `--headers-timeout (${limits.headersTimeoutMs / 1000} s) must not exceed --request-timeout (${limits.requestTimeoutMs / 1000} s): the head is part of the request`,
    );
  }
  return limits;
}
