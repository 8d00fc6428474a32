import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url));
const pkg = (name: string) => ({ find: new RegExp(`^@xenops/${name}$`), replacement: src(`${name}/src/index.ts`) });

export default defineConfig({
  resolve: {
    // Unit tests run the TypeScript sources; end-to-end tests spawn the built binaries.
    alias: [
      pkg('core'),
      // Test-only entry point (the store contract suite): sources, never built.
      { find: /^@xenops\/core\/testing$/, replacement: src('core/src/testing/index.ts') },
      pkg('store-sqlite'),
      pkg('store-nats'),
      pkg('actors'),
      pkg('gateway'),
      pkg('client'),
      pkg('console'),
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time on this 2-core kind of machine (vitest's default is cores - 1 = 1): most
    // end-to-end time is spent waiting on spawned processes, so two overlap well.
    maxWorkers: 2,
  },
});
