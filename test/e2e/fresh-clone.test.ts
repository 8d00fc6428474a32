/**
 * What a newcomer does first (issue 12 item 6; README's first lines): clone, `npm ci`, then
 * `npx xenops --help`. npm links a workspace's bins at `npm ci` before `prepare` builds dist/ and
 * skips those whose file is missing, and npx then asked the registry for a package `xenops` (404).
 * The bins are committed shims now. One clone, one `npm ci` (from the npm cache: --prefer-offline),
 * both commands; npx runs offline, so a missing bin fails here instead of reaching the registry.
 *
 * It clones the committed state (HEAD), not uncommitted changes.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, makeTempDir, REPO_ROOT } from '../support/xenopsd.js';

afterAll(cleanupAll);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without what `npm test` sets for its own scripts (a newcomer's shell). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_ENV') env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env = cleanEnv()): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout: ${r.stdout.slice(-4000)}\nstderr: ${r.stderr.slice(-4000)}`);
  return r;
}

describe('a fresh clone', () => {
  it('npm ci, then npx xenops --help and npx xenopsd --help work; without a build the bins say what to do', async () => {
    const repo = path.join(await makeTempDir('fresh-clone'), 'xenops-ts');
    ok(await run('git', ['clone', '--quiet', REPO_ROOT, repo], REPO_ROOT, 60_000), 'git clone');
    ok(await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], repo, 480_000), 'npm ci');

    const offline = cleanEnv({ npm_config_offline: 'true' });
    const xenops = ok(await run('npx', ['xenops', '--help'], repo, 60_000, offline), 'npx xenops --help');
    expect(xenops.stdout).toMatch(/^xenops \d+\.\d+\.\d+: command line for the xenops VM service/);
    const xenopsd = ok(await run('npx', ['xenopsd', '--help'], repo, 60_000, offline), 'npx xenopsd --help');
    expect(xenopsd.stdout).toMatch(/^Usage: xenopsd \[options\]/);

    await rm(path.join(repo, 'packages/cli/dist'), { recursive: true, force: true });
    expect(await run('npx', ['xenops', '--help'], repo, 60_000, offline)).toMatchObject({ code: 1, stdout: '', stderr: 'xenops: not built yet; run npm run build\n' });
  }, 600_000);
});
