#!/usr/bin/env node
// The `xenops` command. npm links a workspace's bins at `npm ci`, before `prepare` builds dist/,
// and skips a bin whose file is missing: so the bin is this committed file, which runs the built one.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin/xenops.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('xenops: not built yet; run npm run build\n');
  process.exit(1);
}
await import(entry.href);
