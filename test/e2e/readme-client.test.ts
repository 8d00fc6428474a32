/**
 * The README's client example, exactly as written there (the code block after
 * `<!-- client-example -->`), saved in the checkout and run with node against a running service:
 * what a reader of a fresh clone would do after `npm ci`.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { X } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, REPO_ROOT, spawnXenopsd, uniqueSuffix } from '../support/xenopsd.js';

afterAll(cleanupAll);

async function readmeExample(): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const match = /<!-- client-example -->\n```js\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README.md has no client example (a ```js block after <!-- client-example -->)');
  return match[1]!;
}

describe('the README client example', () => {
  it('is five lines that run as written and print what the service holds', async () => {
    const code = await readmeExample();
    expect(code.trimEnd().split('\n')).toHaveLength(5);
    const svc = await spawnXenopsd({ mode: 'embedded' });
    expect((await svc.client().call('VM.add', [X({ vm: xenopsdVm(vmId('readme'), { name: 'readme-vm' }) })])).ok).toBe(true);
    // In the checkout, as the README says, so that `@xenops/client` resolves as it would for a reader.
    const file = path.join(REPO_ROOT, `.readme-client-${uniqueSuffix()}.mjs`);
    await writeFile(file, code);
    try {
      const child = spawn(process.execPath, [file], { cwd: REPO_ROOT, env: { ...process.env, XENOPS_URL: svc.url! }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toBe('readme-vm Halted\nxenops-ts\n');
    } finally {
      await rm(file, { force: true });
    }
  });
});
