// Starts and stops a fresh xenopsd process (embedded or NATS) for one workload.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DAEMON = `${ROOT}packages/xenopsd/dist/bin/xenopsd.js`;

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * CPU seconds (user + system) a process has used, from /proc/<pid>/stat. On a shared machine a
 * workload's CPU time per operation is steadier than its wall-clock rate.
 */
export function cpuSeconds(pid, { mainThread = false } = {}) {
  try {
    // The main thread's own line is the task whose id is the pid (the JS thread).
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Starts counting a process's CPU time; the function returned gives the ms used since, per op. */
export function cpuMeter(pid, opts) {
  const start = cpuSeconds(pid, opts);
  return (ops) => ((cpuSeconds(pid, opts) - start) * 1000) / ops;
}

/** RSS (and peak RSS) of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) ?? [])[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/**
 * Spawns xenopsd. `cfg`: {mode: 'embedded'|'nats', dataDir, natsUrl, prefix, port, cpuProfDir,
 * role ('all' | 'gateway' | 'agent'), hostId}. `ready` resolves once the "ready: …" line appears
 * on stderr; `url` is the "serving http://H:P" address of a process that serves HTTP.
 */
export async function startService(cfg, { readyTimeoutMs = 600_000 } = {}) {
  const nodeArgs = [];
  if (cfg.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${cfg.cpuProfDir}`);
  const listen = cfg.role === 'agent' ? 'off' : `127.0.0.1:${cfg.port ?? 0}`;
  const args = [...nodeArgs, DAEMON, '--listen', listen, '--socket', 'off', '--data-dir', cfg.dataDir];
  if (cfg.mode === 'nats') args.push('--nats', cfg.natsUrl, '--nats-prefix', cfg.prefix);
  if (cfg.role) args.push('--role', cfg.role);
  if (cfg.hostId) args.push('--host-id', cfg.hostId);
  if (cfg.extraArgs) args.push(...cfg.extraArgs);
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const svc = { child, pid: child.pid, t0, log: [], exited: false };
  child.on('exit', (code, sig) => {
    svc.exited = true;
    svc.exitCode = code ?? sig;
  });
  let buf = '';
  svc.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`xenopsd not ready after ${readyTimeoutMs} ms`)), readyTimeoutMs);
    child.stderr.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (svc.log.length < 200) svc.log.push(line);
        if (/ready: /.test(line)) {
          clearTimeout(timer);
          svc.url = line.match(/serving (http:\/\/[^\s,]+)/)?.[1];
          svc.readyMs = performance.now() - t0;
          resolve(svc);
        }
        if (/fatal|cannot start/.test(line)) process.stderr.write(`  xenopsd: ${line}\n`);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`xenopsd exited (${code}) before ready:\n${svc.log.join('\n')}`));
    });
  });
  svc.stop = (timeoutMs = 120_000) => stopService(svc, timeoutMs);
  return svc;
}

export function stopService(svc, timeoutMs = 120_000) {
  if (svc.exited) return Promise.resolve(svc.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      process.stderr.write(`  xenopsd ${svc.pid} did not stop in ${timeoutMs} ms: SIGKILL\n`);
      svc.child.kill('SIGKILL');
    }, timeoutMs);
    svc.child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve(code ?? sig);
    });
    svc.child.kill('SIGTERM');
  });
}
