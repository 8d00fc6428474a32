import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { guestImage, guestImageDir } from '../../packages/actors/src/testing/tiny-guest.js';

// `npm run guest-image` as a newcomer runs it. Booting what it builds is the job of
// packages/actors/src/backends/qemu/tiny-guest.test.ts; here: its command line, its cache and its
// failure when the packages cannot be had. CI builds the image before the tests.

const script = fileURLToPath(new URL('../../scripts/guest-image.mjs', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'guest-image-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.trim().split('\n') };
}

describe('npm run guest-image', () => {
  it('--help explains what it builds and what it prints', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/apt-get download/);
    expect(r.stdout).toMatch(/'kernel: <path>' and 'initrd: <path>'/);
  });

  it('refuses an unknown argument and an --out without a directory', () => {
    expect(run(['--frobnicate'])).toMatchObject({ status: 1, stderr: expect.stringMatching(/unknown argument "--frobnicate"/) });
    expect(run(['--out'])).toMatchObject({ status: 1, stderr: expect.stringMatching(/--out needs a directory/) });
  });

  it('a second run is served from the cache: fast, and ends with the kernel and initrd lines', () => {
    const before = guestImage(); // fails loudly when CI did not build the image
    const t0 = Date.now();
    const r = run([]);
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.stdout).toMatch(/^cached guest image/m);
    expect(r.lines.slice(-2)).toEqual([`kernel: ${before.kernel}`, `initrd: ${before.initrd}`]);
    expect(existsSync(before.kernel) && existsSync(before.initrd)).toBe(true);
    expect(r.stdout).toMatch(/^initrd size: \d+ bytes/m);
    expect(guestImageDir()).toBe(join(before.kernel, '..'));
  });

  it('fails with a clear message when apt-get cannot download the packages', () => {
    // An apt-get that fails the way it does without package lists or a mirror.
    const bin = join(scratch, 'bin');
    rmSync(bin, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', bin]);
    writeFileSync(join(bin, 'apt-get'), '#!/bin/sh\necho "E: Unable to locate package linux-image-amd64" >&2\nexit 100\n');
    chmodSync(join(bin, 'apt-get'), 0o755);
    const out = join(scratch, 'out');
    const r = run(['--out', out], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Unable to locate package linux-image-amd64/);
    expect(r.stderr).toMatch(/Cannot download the guest's packages/);
    expect(r.stdout).not.toMatch(/^kernel: /m);
    // Nothing half-built is left to be mistaken for an image.
    expect(existsSync(join(out, 'manifest.json'))).toBe(false);
    expect(existsSync(join(out, 'work'))).toBe(false);
  });
});
