/**
 * A seed-dialect client in Python 3 using only xmlrpc.client (the seed document's example), run
 * against a real xenopsd over HTTP.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, REPO_ROOT, spawnXenopsd, startNatsCluster } from '../support/xenopsd.js';

afterAll(cleanupAll);

const SCRIPT = path.join(REPO_ROOT, 'test/python/seed_client_test.py');

function runPython(url: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [SCRIPT, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('python xmlrpc.client seed client', () => {
  it('passes against the embedded service', async () => {
    const svc = await spawnXenopsd({ mode: 'embedded' });
    const r = await runPython(svc.url!);
    expect(r.out).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.code, r.out).toBe(0);
    await svc.stop();
  });

  it('passes against the NATS gateway + agent', async () => {
    const cluster = await startNatsCluster();
    const r = await runPython(cluster.gateway.url!);
    expect(r.out).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.code, r.out).toBe(0);
    await cluster.stop();
  });
});
