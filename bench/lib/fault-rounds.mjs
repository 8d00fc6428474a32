/**
 * The NATS fault rounds (issue 17), run by the fault suite itself (test/e2e/nats-faults.test.ts:
 * real gateway and agent processes on a private nats-server), its per-round recovery collected
 * from what it prints.
 */
import { spawn } from 'node:child_process';
import { ROOT } from './service.mjs';

export async function faultRounds(rounds, clients, timeoutMs, log) {
  const env = { ...process.env, XENOPS_FAULT_ROUNDS: String(rounds), XENOPS_FAULT_CLIENTS: String(clients) };
  const args = ['vitest', 'run', 'test/e2e/nats-faults.test.ts', '-t', 'kill -9 rounds'];
  const child = spawn('npx', args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const perRound = [...out.matchAll(/fault round (\d+) \((\w+)\): recovered in (\d+) ms \((\d+) bad probe/g)].map((m) => ({
    round: Number(m[1]),
    victim: m[2],
    recoveryMs: Number(m[3]),
    badProbes: Number(m[4]),
  }));
  for (const r of perRound) log(`  round ${r.round} (${r.victim}): ${r.recoveryMs} ms`);
  const acked = /(\d+) acknowledged writes/.exec(out);
  return {
    rounds: perRound,
    slowestMs: perRound.length ? Math.max(...perRound.map((r) => r.recoveryMs)) : undefined,
    acknowledgedWrites: acked ? Number(acked[1]) : undefined,
    passed: code === 0,
  };
}
