// Generates the static protobuf module for packages/core from proto/*.proto (pbjs + pbts).
// Skips the work when the output is newer than every schema.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
const outDir = join(root, 'packages/core/generated');
const js = join(outDir, 'xenops.js');
const dts = join(outDir, 'xenops.d.ts');
const schemas = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).map((f) => join(protoDir, f));

const newest = Math.max(...schemas.map((f) => statSync(f).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
if (existsSync(js) && existsSync(dts) && statSync(js).mtimeMs > newest && statSync(dts).mtimeMs > newest) process.exit(0);

mkdirSync(outDir, { recursive: true });
const bin = (name) => join(root, 'node_modules/.bin', name);
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'es6', '--force-number', '--no-verify', '--no-delimited', '--no-beautify', '-o', js, ...schemas], { stdio: 'inherit' });
// protobufjs is CommonJS without an exports map: Node's ESM loader needs the file extension and
// the default import. pbjs's --force-number does not reach the decoder, so Long support is
// switched off instead: 64-bit fields decode as numbers (every value we store is below 2^53).
const importLine = /^import .*\$protobuf from "protobufjs\/minimal(\.js)?";$/m;
const generated = readFileSync(js, 'utf8');
if (!importLine.test(generated)) throw new Error('gen-proto: unexpected pbjs output (import line not found)');
// The decoder names the set member of a oneof through its virtual setter (`m.body = "vmAdded"`),
// which deletes every other member: 40 deletes per event on a message that has none of them.
// Dropping those assignments changes nothing (the getter finds the set member) and halves the
// cost of decoding an event.
const oneofAssignment = /^\s*m\.body = "[A-Za-z]+";\n/gm;
const src = generated
  .replace(importLine, () => 'import $protobuf from "protobufjs/minimal.js";\n$protobuf.util.Long = undefined;\n$protobuf.configure();')
  .replace(oneofAssignment, '');
writeFileSync(js, src);
execFileSync(bin('pbts'), ['--no-comments', '-o', dts, js], { stdio: 'inherit' });
console.log(`generated ${js.replace(root + '/', '')}`);
