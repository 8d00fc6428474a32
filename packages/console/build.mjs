// Bundles the console (ui/) into dist/ui/ with esbuild: one minified script, one stylesheet and
// the page. Run by `npm run build` at the root; prints the bundle's size (issue 16 asks it small).
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist', 'ui');
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, 'ui', 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(here, 'ui', 'index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'ui', 'style.css'), join(out, 'app.css'));

const sizes = ['index.html', 'app.js', 'app.css'].map((f) => {
  const bytes = statSync(join(out, f)).size;
  const gz = gzipSync(readFileSync(join(out, f))).length;
  return { file: f, bytes, gzip: gz };
});
writeFileSync(join(out, 'sizes.json'), `${JSON.stringify(sizes, null, 2)}\n`);
if (process.argv.includes('--verbose')) for (const s of sizes) console.log(`console: ${s.file} ${s.bytes} bytes (${s.gzip} gzipped)`);
