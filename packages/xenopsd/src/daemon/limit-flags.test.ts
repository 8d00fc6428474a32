import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '@xenops/gateway';
import { ConfigError, parseDaemonArgs, type DaemonConfig } from './config.js';

const parse = (...args: string[]) => parseDaemonArgs(['--data-dir', '/tmp/x', ...args], {}) as DaemonConfig;

describe('limit flags', () => {
  it('default to the documented values', () => {
    expect(parse().limits).toEqual(DEFAULT_LIMITS);
    expect(DEFAULT_LIMITS).toMatchObject({
      maxConnections: 1024,
      maxUpdatesWaiters: 1024,
      maxSseClients: 64,
      maxNatsRequests: 1024,
      maxQueuedTasks: 1000,
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 120_000,
      keepAliveTimeoutMs: 5_000,
    });
  });

  it('take counts and seconds (decimals allowed)', () => {
    const limits = parse(
      '--max-connections', '10',
      '--max-updates-waiters', '2',
      '--max-sse-clients', '1',
      '--max-nats-requests', '3',
      '--max-queued-tasks', '4',
      '--headers-timeout', '0.5',
      '--request-timeout', '2',
      '--keep-alive-timeout', '1.25',
    ).limits;
    expect(limits).toEqual({
      maxConnections: 10,
      maxUpdatesWaiters: 2,
      maxSseClients: 1,
      maxNatsRequests: 3,
      maxQueuedTasks: 4,
      headersTimeoutMs: 500,
      requestTimeoutMs: 2000,
      keepAliveTimeoutMs: 1250,
    });
  });

  it('refuse zero, negatives, fractions of a count, words, and a head deadline past the request deadline', () => {
    for (const args of [
      ['--max-connections', '0'],
      ['--max-sse-clients', '-1'],
      ['--max-queued-tasks', '1.5'],
      ['--max-updates-waiters', 'many'],
      ['--headers-timeout', '0'],
      ['--request-timeout', 'soon'],
      ['--keep-alive-timeout', '1e99'],
      ['--headers-timeout', '30', '--request-timeout', '10'],
    ]) {
      expect(() => parse(...args), args.join(' ')).toThrow(ConfigError);
    }
    expect(() => parse('--max-connections', '0')).toThrow(/--max-connections expects a whole number of at least 1, got "0"/);
    expect(() => parse('--headers-timeout', '30', '--request-timeout', '10')).toThrow(/must not exceed --request-timeout/);
  });
});
