import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('package boundaries (ARCHITECTURE.md "The rooms")', () => {
  it('the gateway never imports the actors: the bus is the only door between them', () => {
    const root = fileURLToPath(new URL('.', import.meta.url));
    const offenders = sources(root).filter((f) => /from ['"](@xenops\/actors|\.\.\/\.\.\/\.\.\/actors)/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
