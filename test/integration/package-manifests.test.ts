/**
 * The workspaces' package.json files after `npm run build` (issue 12 item 6): every `exports`,
 * `main` and `bin` target exists, bins are committed files (so npm links them at `npm ci`, before
 * the build), every package with an entry point loads by name, and the IDL and the CLI load
 * neither SQLite nor NATS.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/xenopsd.js';

interface Manifest {
  name: string;
  main?: string;
  exports?: unknown;
  bin?: Record<string, string>;
}

const workspaces = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
const manifest = (ws: string) => JSON.parse(readFileSync(path.join(REPO_ROOT, ws, 'package.json'), 'utf8')) as Manifest;

/** Every file an `exports` value points at (conditions and subpaths walked). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports && typeof exports === 'object') return Object.values(exports).flatMap(exportTargets);
  return [];
}

function node(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function git(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile('git', args, { cwd: REPO_ROOT }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
}

describe('workspace manifests', () => {
  it.each(workspaces)('%s: exports, main and bin point at files that exist', async (ws) => {
    const m = manifest(ws);
    const targets = [...exportTargets(m.exports), ...(m.main ? [m.main] : [])];
    expect(targets.length, `${m.name} exports nothing`).toBeGreaterThan(0);
    for (const t of targets) expect(existsSync(path.join(REPO_ROOT, ws, t)), `${m.name}: ${t}`).toBe(true);
    for (const [name, bin] of Object.entries(m.bin ?? {})) {
      const file = path.join(REPO_ROOT, ws, bin);
      accessSync(file, constants.X_OK);
      expect(readFileSync(file, 'utf8').startsWith('#!/usr/bin/env node\n'), `${name}: shebang`).toBe(true);
      // Committed, not built: npm links bins before `prepare` builds dist/.
      expect(bin.startsWith('./dist/') || bin.startsWith('dist/'), `${name} points into dist/`).toBe(false);
      expect(await git('ls-files', path.join(ws, bin))).not.toBe('');
    }
  });

  it('every package with an entry point loads by name', async () => {
    const names = workspaces.map(manifest).filter((m) => exportTargets((m.exports as Record<string, unknown> | undefined)?.['.']).length > 0).map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['@xenops/core', '@xenops/store-sqlite', '@xenops/store-nats', '@xenops/actors', '@xenops/gateway', '@xenops/client']));
    const r = await node(`for (const n of ${JSON.stringify(names)}) { const m = await import(n); if (Object.keys(m).length === 0) throw new Error(n + ' exports nothing'); }`);
    expect(r).toMatchObject({ code: 0, stderr: '' });
  });

  it('the IDL, the client and the xenops command line load neither SQLite nor NATS', async () => {
    // Both are CommonJS: once loaded, they are in the CommonJS module cache.
    const loaded = `const { createRequire } = await import('node:module');
      const cache = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify(cache.filter((f) => /better-sqlite3|@nats-io/.test(f))));`;
    const core = await node(`await import('@xenops/core'); await import('@xenops/client'); ${loaded}`);
    expect(core.stderr).toBe('');
    expect(JSON.parse(core.stdout)).toEqual([]);
    const main = path.join(REPO_ROOT, 'packages/cli/dist/xenops/main.js');
    const sink = '{ write() { return true; } }';
    const cli = await node(`const { main } = await import(${JSON.stringify(main)}); await main(['--help'], { stdout: ${sink}, stderr: ${sink}, env: {} }); ${loaded}`);
    expect(cli.stderr).toBe('');
    expect(JSON.parse(cli.stdout)).toEqual([]);
    // The check can see them: the daemon's stores load both.
    const daemon = await node(`await import('@xenops/store-sqlite'); await import('@xenops/store-nats'); ${loaded}`);
    expect(JSON.parse(daemon.stdout).join(' ')).toMatch(/better-sqlite3.*@nats-io|@nats-io.*better-sqlite3/);
  });
});
