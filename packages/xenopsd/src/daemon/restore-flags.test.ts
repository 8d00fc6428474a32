import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDaemonArgs } from './config.js';

describe('xenopsd --restore FILE', () => {
  it('takes one target from the command line, and the backup prefix unless --nats-prefix is given', () => {
    expect(parseDaemonArgs(['--restore', 'b.xbk', '--data-dir', 'd'], {})).toMatchObject({
      oneShot: { action: 'restore', file: resolve('b.xbk'), dataDir: resolve('d'), json: false },
    });
    const nats = parseDaemonArgs(['--restore', 'b.xbk', '--nats', 'nats://n:4222', '--nats-creds', 'a.creds', '--json'], {});
    expect(nats).toMatchObject({ oneShot: { action: 'restore', nats: { servers: 'nats://n:4222', credsFile: 'a.creds' }, json: true } });
    expect(nats !== 'help' && nats !== 'version' && nats.oneShot?.action === 'restore' && nats.oneShot.nats).not.toHaveProperty('prefix');
    expect(parseDaemonArgs(['--restore', 'b.xbk', '--nats', 'nats://n', '--nats-prefix', 'p'], {})).toMatchObject({ oneShot: { nats: { prefix: 'p' } } });
  });

  it('never takes its target from the environment, and refuses none, two, or another action with it', () => {
    const env = { XENOPS_NATS_URL: 'nats://env:4222', XENOPS_DATA_DIR: '/env/dir' };
    expect(() => parseDaemonArgs(['--restore', 'b.xbk'], env)).toThrow('restore needs a target: --data-dir DIR for an embedded store, or --nats URL for NATS');
    expect(parseDaemonArgs(['--restore', 'b.xbk', '--data-dir', 'd'], env)).toMatchObject({ oneShot: { dataDir: resolve('d') } });
    expect(() => parseDaemonArgs(['--restore', 'b.xbk', '--data-dir', 'd', '--nats', 'nats://n'], {})).toThrow(/not both/);
    expect(() => parseDaemonArgs(['--restore', 'b.xbk', '--nats', 'nats://n', '--nats-setup'], {})).toThrow(ConfigError);
    expect(() => parseDaemonArgs(['--json'], {})).toThrow('--json goes with --restore only');
  });
});
