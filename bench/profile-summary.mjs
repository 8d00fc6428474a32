#!/usr/bin/env node
// Summarises a V8 .cpuprofile: top self-time functions and self time per package/module.
// usage: node bench/profile-summary.mjs FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';

export function summarise(file, top = 25) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
  }
  const fn = new Map();
  const mod = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const url = cf.url.replace(/^file:\/\//, '').replace(/^.*\/work\/main\//, '');
    const where = url ? `${url}:${cf.lineNumber + 1}` : '';
    const key = `${name} ${where}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + us);
    const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? url.match(/^packages\/[^/]+\/dist\/[^/]+(?:\/[^/]+)?/)?.[0] ?? (url.startsWith('node:') ? 'node: (core)' : url || name);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const fmt = (entries) =>
    [...entries].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => ({ name: k, ms: Math.round(us / 1000), pct: +((100 * us) / total).toFixed(1) }));
  return { file, busyMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), functions: fmt(fn), modules: fmt(mod) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = summarise(process.argv[2], Number(process.argv[3] ?? 25));
  console.log(`${s.file}: busy ${s.busyMs} ms, idle ${s.idleMs} ms`);
  console.log('\nself time by function:');
  for (const f of s.functions) console.log(`${String(f.pct).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}`);
  console.log('\nself time by module:');
  for (const f of s.modules) console.log(`${String(f.pct).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}`);
}
