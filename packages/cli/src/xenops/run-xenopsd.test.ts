import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { runXenopsd, xenopsdCommand } from './run-xenopsd.js';

describe('xenops runs the xenopsd of its installation', () => {
  it('finds the @xenops/xenopsd installed with it (the workspace), run by this node', () => {
    const found = xenopsdCommand();
    expect(found.command).toBe(process.execPath);
    expect(found.args[0]).toMatch(/packages\/xenopsd\/bin\/xenopsd\.js$/);
  });

  it('falls back to xenopsd on PATH, and says so clearly when there is none', async () => {
    expect(
      xenopsdCommand(() => {
        throw new Error('Cannot find module');
      }),
    ).toEqual({ command: 'xenopsd', args: [] });
    const err = await runXenopsd(['--version'], () => {}, { command: 'xenopsd-not-installed-anywhere', args: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toBe('cannot find xenopsd: it is neither installed with this xenops (@xenops/xenopsd) nor on PATH; install it to restore');
  });

  it('hands over its stdout line by line and its exit status', async () => {
    const lines: string[] = [];
    const status = await runXenopsd(['--version'], (l) => lines.push(l));
    expect(status).toBe(0);
    expect(lines).toEqual([expect.stringMatching(/^xenopsd \d+\.\d+\.\d+$/)]);
    expect(await runXenopsd(['--no-such-flag'], () => {})).toBe(2);
  });
});
