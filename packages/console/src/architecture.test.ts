import { readdirSync, readFileSync } from 'node:fs';
import { describeArchitecture } from '@xenops/core/testing';
import { describe, expect, it } from 'vitest';

// The Node side only says where the built page is: no package of ours, nothing third-party at run
// time. Its devDependencies are the page's build inputs (bundled into dist/ui/ by build.mjs).
describeArchitecture(import.meta.url, { ours: [], thirdParty: [], tests: { thirdParty: ['esbuild', 'eventsource-parser', 'preact'] } });

/** The page (ui/, bundled for the browser) talks to the gateway over HTTP only. */
const PAGE_MAY_IMPORT = new Set(['preact', 'preact/hooks', 'eventsource-parser']);

describe('@xenops/console: what the page may import', () => {
  it('imports only its own modules, Preact and eventsource-parser: never a package of ours or a Node module', () => {
    const dir = new URL('../ui/', import.meta.url);
    const files = readdirSync(dir).filter((f) => /\.tsx?$/.test(f));
    expect(files.length).toBeGreaterThan(5);
    const bad: string[] = [];
    for (const f of files) {
      const source = readFileSync(new URL(f, dir), 'utf8');
      for (const m of source.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!;
        if (!spec.startsWith('./') && !PAGE_MAY_IMPORT.has(spec)) bad.push(`${f}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
