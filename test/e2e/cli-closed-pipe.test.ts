/**
 * `xenops log | head -3` (issue 12 item 6): a reader that stops early closes the pipe; the command
 * then ends quietly with status 0 instead of dying on EPIPE with a stack trace. Real pipes, a real
 * service whose log is bigger than a pipe's buffer, so that xenops is still writing when the
 * reader goes.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X } from '../support/rpc.js';
import { xenopsdVm } from '../support/vms.js';
import { cleanupAll, REPO_ROOT, spawnXenopsd, type Xenopsd } from '../support/xenopsd.js';

const XENOPS_BIN = path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js');
/** ~200 bytes a line of `xenops log --json`: 600 VMs make about twice a 64 KiB pipe buffer. */
const VMS = 600;

let service: Xenopsd;
beforeAll(async () => {
  service = await spawnXenopsd({ mode: 'embedded' });
  const c = service.client();
  for (let i = 0; i < VMS; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => c.ok('VM.add', X({ vm: xenopsdVm(undefined, { name: `pipe-${i + j}` }) }))));
  }
}, 120_000);
afterAll(cleanupAll);

describe('xenops writing into a pipe its reader closed', () => {
  it('xenops log | head -3 ends with status 0 and nothing on stderr', async () => {
    const shell = `"${process.execPath}" "${XENOPS_BIN}" --url ${service.url!} log --json | head -3; echo "xenops exit $\{PIPESTATUS[0]}" >&2`;
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile('bash', ['-c', shell], { timeout: 60_000 }, (err, out, errOut) => (err ? reject(err) : resolve({ stdout: out, stderr: errOut }))),
    );
    expect(stdout.trim().split('\n')).toHaveLength(3);
    expect(stderr).toBe('xenops exit 0\n');
  });

  it('a reader that closes before reading anything: status 0, no stack trace', async () => {
    const child = spawn(process.execPath, [XENOPS_BIN, '--url', service.url!, 'log'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });
});
