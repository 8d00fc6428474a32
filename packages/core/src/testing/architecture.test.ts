/** The import checker itself: each kind of forbidden import is found (so that each package's test can fail). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf, packageOf, violationOf, type ImportRules } from './architecture.js';

const src = '/repo/packages/p/src';
const rules: ImportRules = { ours: ['@xenops/core'], thirdParty: ['yaml', '@nats-io/transport-node'], lazy: ['@nats-io/transport-node'] };
const violations = async (code: string, file = join(src, 'a.ts')) => (await importsOf(file, code)).map((s) => violationOf(s, rules, src)).filter(Boolean);

describe('the import checker of the architecture tests', () => {
  it('accepts what the rules allow: ours, third-party, builtins, relative imports inside the package, lazy loading', async () => {
    const code = [
      "import { a } from '@xenops/core';",
      "import YAML from 'yaml';",
      "import { readFileSync } from 'node:fs';",
      "import { b } from './b.js';",
      "import { g } from '../generated/x.js';",
      "import type { NatsConnection } from '@nats-io/transport-node';",
      "export type { Msg } from '@nats-io/transport-node';",
      "const nats = await import('@nats-io/transport-node');",
    ].join('\n');
    expect(await importsOf(join(src, 'a.ts'), code)).toHaveLength(8);
    expect(await violations(code)).toEqual([]);
  });

  it('finds every kind of forbidden import, with its line', async () => {
    expect(
      await violations(
        [
          "import { x } from '@xenops/actors';",
          "export { y } from '@xenops/gateway';",
          "const z = await import('better-sqlite3');",
          "import { connect } from '@nats-io/transport-node';",
          "import { q } from '../../other/src/q.js';",
          "export type { T } from '../../other/src/t.js';",
          "import { deep } from '@xenops/core/dist/model/decide.js';",
          "const name = 'yaml'; await import(name);",
          "import { it } from 'vitest';",
        ].join('\n'),
      ),
    ).toEqual([
      'a.ts:1: may not import @xenops/actors',
      'a.ts:2: may not import @xenops/gateway',
      'a.ts:3: may not import the third-party module better-sqlite3',
      'a.ts:4: may load @nats-io/transport-node lazily only (import type, or import())',
      "a.ts:5: '../../other/src/q.js' leaves the package; import the other package by name",
      "a.ts:7: '@xenops/core/dist/model/decide.js' reaches into @xenops/core; import what it exports",
      'a.ts:8: import() of a computed specifier cannot be checked; import a literal',
      'a.ts:9: may not import the third-party module vitest',
      "a.ts:6: '../../other/src/t.js' leaves the package; import the other package by name",
    ]);
  });

  it('lets tests use the test tools and the test-only entry points, and nothing else besides their rules', async () => {
    const test = join(src, 'a.test.ts');
    expect(await violations("import { it } from 'vitest';\nimport { collect } from '@xenops/core/testing';", test)).toEqual([]);
    expect(await violations("import Database from 'better-sqlite3';", test)).toEqual(['a.test.ts:1: may not import the third-party module better-sqlite3']);
  });

  it('names packages by their npm name', () => {
    expect(packageOf('@nats-io/jetstream')).toBe('@nats-io/jetstream');
    expect(packageOf('@xenops/core/testing')).toBe('@xenops/core');
    expect(packageOf('yaml/util')).toBe('yaml');
  });
});
