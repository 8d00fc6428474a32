import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDaemonArgs } from './config.js';

describe('xenopsd --backend qemu and its --qemu-* flags (API.md §8.4)', () => {
  it('defaults to TCG and user-mode networking; takes the binary, accelerator, SR directory and network', () => {
    expect(parseDaemonArgs(['--backend', 'qemu'], {})).toMatchObject({ backend: 'qemu', qemu: { accel: 'tcg', network: 'user' } });
    const all = parseDaemonArgs(['--backend', 'qemu', '--qemu-binary', '/opt/q', '--qemu-accel', 'kvm', '--qemu-sr-dir', 'sr', '--qemu-network', 'bridge'], {});
    expect(all).toMatchObject({ qemu: { binary: '/opt/q', accel: 'kvm', srDir: resolve('sr'), network: 'bridge' } });
    expect(parseDaemonArgs([], {})).not.toHaveProperty('qemu');
    expect(parseDaemonArgs(['--backend', 'qemu', '--qemu-migration-address', '10.0.0.2'], {})).toMatchObject({ qemu: { migrationAddress: '10.0.0.2' } });
  });

  it('refuses a bad accelerator, network or empty path, and --qemu-* flags without --backend qemu', () => {
    expect(() => parseDaemonArgs(['--backend', 'qemu', '--qemu-accel', 'hvf'], {})).toThrow('--qemu-accel must be tcg or kvm, not "hvf"');
    expect(() => parseDaemonArgs(['--backend', 'qemu', '--qemu-network', 'tap'], {})).toThrow('--qemu-network must be user or bridge, not "tap"');
    expect(() => parseDaemonArgs(['--backend', 'qemu', '--qemu-binary', ''], {})).toThrow('--qemu-binary must not be empty');
    expect(() => parseDaemonArgs(['--backend', 'qemu', '--qemu-sr-dir', ''], {})).toThrow('--qemu-sr-dir must not be empty');
    expect(() => parseDaemonArgs(['--qemu-accel', 'tcg'], {})).toThrow(ConfigError);
    expect(() => parseDaemonArgs(['--backend', 'qemu', '--qemu-migration-address', 'h2.example'], {})).toThrow('--qemu-migration-address must be an IP address, not "h2.example"');
    expect(() => parseDaemonArgs(['--backend', 'simulator', '--qemu-network', 'user'], {})).toThrow('--qemu-network goes with --backend qemu');
    expect(() => parseDaemonArgs(['--backend', 'xen'], {})).toThrow('--backend must be one of simulator, qemu, not "xen"');
  });
});
