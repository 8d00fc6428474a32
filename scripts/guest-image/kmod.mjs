// Kernel modules for the guest: finds them in an unpacked kernel package and orders them with
// their dependencies. Debian's package ships no modules.dep (depmod runs at install time), so the
// dependencies are read from each module's own `.modinfo` ELF section (`depends=a,b`).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Module names use `_` where file names may use `-` (pvpanic-pci.ko is module pvpanic_pci). */
export const moduleName = (file) => file.replace(/\.ko(\.[a-z]+)?$/, '').replace(/^.*\//, '').replace(/-/g, '_');

/** The NUL-separated `key=value` strings of an ELF64 little-endian object's `.modinfo` section. */
export function readModinfo(elf, what = 'module') {
  const fail = (why) => { throw new Error(`${what}: ${why}`); };
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) fail('not an ELF file');
  if (elf[4] !== 2 || elf[5] !== 1) fail('not a 64-bit little-endian ELF file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shentsize < 64 || shstrndx >= shnum || shoff + shnum * shentsize > elf.length) fail('bad section header table');
  const section = (i) => {
    const at = shoff + i * shentsize;
    const offset = Number(elf.readBigUInt64LE(at + 24));
    const size = Number(elf.readBigUInt64LE(at + 32));
    if (offset + size > elf.length) fail(`section ${i} lies outside the file`);
    return { nameAt: elf.readUInt32LE(at), offset, size };
  };
  const names = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameStart = names.offset + s.nameAt;
    const name = elf.toString('latin1', nameStart, elf.indexOf(0, nameStart));
    if (name !== '.modinfo') continue;
    const info = new Map();
    for (const entry of elf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0 && !info.has(entry.slice(0, eq))) info.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return info;
  }
  return fail('no .modinfo section');
}

/** Every loadable module under `<modulesDir>/kernel`, by module name → absolute path. */
export function indexModules(modulesDir) {
  const index = new Map();
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.[a-z]+)?$/.test(e.name)) index.set(moduleName(e.name), p);
    }
  };
  walk(join(modulesDir, 'kernel'));
  return index;
}

/** Names of the modules built into the kernel (`modules.builtin`): nothing to load for those. */
export function builtinModules(modulesDir) {
  let text = '';
  try { text = readFileSync(join(modulesDir, 'modules.builtin'), 'utf8'); } catch { /* none listed */ }
  return new Set(text.split('\n').filter(Boolean).map(moduleName));
}

/**
 * The wanted modules and everything they depend on, dependencies first (the order to insmod them).
 * `optional` names may be absent from this kernel (their variant is built in or named otherwise).
 * `load(path)` returns a module's uncompressed bytes.
 */
export function resolveModules({ modulesDir, wanted, optional = [], load }) {
  const index = indexModules(modulesDir);
  const builtin = builtinModules(modulesDir);
  const order = [];
  const state = new Map(); // name → 'visiting' | 'done'
  const visit = (name, chain) => {
    if (builtin.has(name) || state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`module dependency cycle: ${[...chain, name].join(' → ')}`);
    const path = index.get(name);
    if (!path) throw new Error(`module ${name} (needed by ${chain.join(' → ') || 'the guest'}) is not in ${modulesDir}`);
    state.set(name, 'visiting');
    const data = load(path);
    const depends = (readModinfo(data, relative(modulesDir, path)).get('depends') ?? '').split(',').filter(Boolean).map(moduleName);
    for (const dep of depends) visit(dep, [...chain, name]);
    state.set(name, 'done');
    order.push({ name, path, data });
  };
  for (const name of wanted.map(moduleName)) visit(name, []);
  const missingOptional = [];
  for (const name of optional.map(moduleName)) {
    if (builtin.has(name) || index.has(name)) visit(name, []);
    else missingOptional.push(name);
  }
  return { modules: order, missingOptional };
}
