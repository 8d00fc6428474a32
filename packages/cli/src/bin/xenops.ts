#!/usr/bin/env node
/** The `xenops` command line (issue 6). All the work is in ../xenops/. */
import { main } from '../xenops/main.js';

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`xenops: fatal: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
