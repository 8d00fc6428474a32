/**
 * The package boundaries of ARCHITECTURE.md ("The rooms") and issue 12 as a test: every package's
 * `src/architecture.test.ts` states what it may import (our packages and third-party modules) and
 * runs {@link describeArchitecture}, which reads every import, `export ... from` and `import()` of
 * the package's sources with es-module-lexer and checks them, and checks that package.json
 * declares exactly those dependencies.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { describe, expect, it } from 'vitest';

export interface ImportRules {
  /** Our packages (`@xenops/...`) the package's code may import. */
  readonly ours: readonly string[];
  /** Third-party modules (npm package names) its code may import. */
  readonly thirdParty: readonly string[];
  /**
   * Of the above, those its code may only load lazily: `import type` (erased) or `import()`
   * (loaded when first used), never a static import that loads them with the package.
   */
  readonly lazy?: readonly string[];
  /** What its tests (`*.test.ts`, `*.suite.ts`, `src/testing/`) may import besides: devDependencies. */
  readonly tests?: { readonly ours?: readonly string[]; readonly thirdParty?: readonly string[] };
}

/** One import of a source file, as written. */
export interface ImportSite {
  readonly file: string;
  readonly line: number;
  /** The specifier; undefined for an `import()` of a computed value. */
  readonly specifier: string | undefined;
  readonly kind: 'static' | 'type' | 'dynamic';
}

/** Test tooling every package's tests may use (root devDependencies). */
const TEST_TOOLS = ['vitest', 'fast-check', 'es-module-lexer'];
/** Test-only entry points of our packages (never built, never a runtime dependency). */
const TEST_ENTRY_POINTS = ['@xenops/core/testing'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every import of `source` (TypeScript), with the line it is on. */
export async function importsOf(file: string, source: string): Promise<ImportSite[]> {
  await init;
  const lineOf = (offset: number) => source.slice(0, offset).split('\n').length;
  const [imports] = parse(source, file);
  const sites: ImportSite[] = imports
    .filter((i) => i.d !== -2) // import.meta
    .map((i) => ({
      file,
      line: lineOf(i.ss),
      specifier: i.n,
      kind: i.d > -1 ? 'dynamic' : /^(import|export)\s+type\b/.test(source.slice(i.ss, i.se)) ? 'type' : 'static',
    }));
  // The lexer reads JavaScript: it skips TypeScript's `export type { ... } from '...'`.
  for (const m of source.matchAll(/^export\s+type\s*\{[^}]*\}\s*from\s*['"]([^'"]+)['"]/gm)) {
    sites.push({ file, line: lineOf(m.index), specifier: m[1], kind: 'type' });
  }
  return sites;
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier);
const isTestFile = (srcDir: string, file: string) => /\.(test|suite)\.ts$/.test(file) || relative(srcDir, file).split(sep)[0] === 'testing';

/** What is wrong with one import under `rules`, or undefined. */
export function violationOf(site: ImportSite, rules: ImportRules, srcDir: string): string | undefined {
  const where = `${relative(srcDir, site.file)}:${site.line}`;
  const spec = site.specifier;
  if (spec === undefined) return `${where}: import() of a computed specifier cannot be checked; import a literal`;
  if (spec.startsWith('.')) {
    // Inside the package (core's generated protobuf code sits beside src/), never another's.
    const packageDir = dirname(srcDir);
    const target = resolve(dirname(site.file), spec);
    return target.startsWith(packageDir + sep) ? undefined : `${where}: '${spec}' leaves the package; import the other package by name`;
  }
  if (isBuiltin(spec)) return undefined;
  const test = isTestFile(srcDir, site.file);
  if (test && (TEST_ENTRY_POINTS.includes(spec) || TEST_TOOLS.includes(packageOf(spec)))) return undefined;
  const pkg = packageOf(spec);
  if (pkg.startsWith('@xenops/')) {
    if (spec !== pkg) return `${where}: '${spec}' reaches into ${pkg}; import what it exports`;
    if (rules.ours.includes(pkg) || (test && rules.tests?.ours?.includes(pkg))) return undefined;
    return `${where}: may not import ${pkg}`;
  }
  if (test && rules.tests?.thirdParty?.includes(pkg)) return undefined;
  if (!rules.thirdParty.includes(pkg)) return `${where}: may not import the third-party module ${pkg}`;
  if (rules.lazy?.includes(pkg) && site.kind === 'static') return `${where}: may load ${pkg} lazily only (import type, or import())`;
  return undefined;
}

/** The package's imports checked against `rules` (call it from `src/architecture.test.ts`). */
export function describeArchitecture(testFileUrl: string, rules: ImportRules): void {
  const srcDir = dirname(fileURLToPath(testFileUrl));
  const packageDir = dirname(srcDir);
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };

  describe(`${manifest.name}: what it may import (DESIGN12.md §1)`, () => {
    it('imports only the packages and modules it is allowed to, and no file outside itself', async () => {
      const sites = (await Promise.all(sourceFiles(srcDir).map((f) => importsOf(f, readFileSync(f, 'utf8'))))).flat();
      expect(sites.length, 'no import found at all: the scan is broken').toBeGreaterThan(0);
      expect(sites.map((s) => violationOf(s, rules, srcDir)).filter(Boolean)).toEqual([]);
    });

    it('declares exactly its allowed runtime dependencies in package.json', () => {
      const declared = Object.keys(manifest.dependencies ?? {}).sort();
      expect(declared).toEqual([...rules.ours, ...rules.thirdParty].sort());
      const devDeclared = Object.keys(manifest.devDependencies ?? {}).sort();
      expect(devDeclared).toEqual([...(rules.tests?.ours ?? []), ...(rules.tests?.thirdParty ?? [])].sort());
    });
  });
}
