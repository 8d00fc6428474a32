#!/usr/bin/env node
/** The `xenops` command line (issue 6). All the work is in ../xenops/. */
import { main } from '../xenops/main.js';

// A reader that stops early (`xenops log | head -3`) closes the pipe: the output is no longer
// wanted, which ends the command quietly and successfully, whatever it was doing.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`xenops: fatal: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
