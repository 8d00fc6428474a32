// The same cycle through libvirt's test driver (test:///default): one virsh batch session reading
// commands on stdin, and python3-libvirt (1 thread, and as many threads as our clients).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PY = fileURLToPath(new URL('./peer_libvirt.py', import.meta.url));

function have(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function run(cmd, args, input, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out.length < 1e6 ? (out += d) : null));
    child.stderr.on('data', (d) => (err.length < 1e5 ? (err += d) : null));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, seconds: (performance.now() - t0) / 1000 });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

export async function peerRun(n, threads, log, timeoutMs = 300_000) {
  if (!have('virsh', ['--version'])) {
    log('libvirt not installed: peer row skipped');
    return { skipped: 'libvirt not installed' };
  }
  const version = spawnSync('virsh', ['--version']).stdout.toString().trim();
  const dir = mkdtempSync(join(tmpdir(), 'xenops-bench-virsh-'));
  const result = { libvirtVersion: version, vms: n };
  try {
    const lines = [];
    for (let i = 0; i < n; i++) {
      const name = `bench-${i}`;
      const file = join(dir, `${name}.xml`);
      writeFileSync(
        file,
        `<domain type='test'><name>${name}</name><uuid>${crypto.randomUUID()}</uuid><memory unit='KiB'>1048576</memory>` +
          `<currentMemory unit='KiB'>524288</currentMemory><vcpu>2</vcpu><os><type arch='x86_64'>hvm</type><boot dev='cdrom'/></os>` +
          `<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash></domain>\n`,
      );
      // the test driver has no start --paused: start, then suspend + resume stand in for unpause (counted as one op)
      lines.push(`define ${file}`, `start ${name}`, `suspend ${name}`, `resume ${name}`, `destroy ${name}`, `undefine ${name}`);
    }
    log(`  peer: virsh batch session, ${n} domains (define, start, suspend+resume as unpause, destroy, undefine)`);
    const v = await run('virsh', ['-q', '-c', 'test:///default'], lines.join('\n') + '\nquit\n', timeoutMs);
    const failures = (v.err.match(/error:/g) ?? []).length;
    result.virsh = { ops: 5 * n, seconds: v.seconds, opsPerSecond: (5 * n) / v.seconds, failures, exit: v.code };
    if (failures) log(`  peer: virsh reported ${failures} errors, e.g. ${v.err.split('\n').slice(0, 2).join(' | ')}`);
    const python = ['/usr/bin/python3', 'python3'].find((p) => have(p, ['-c', 'import libvirt']));
    if (python) {
      for (const t of [1, threads]) {
        log(`  peer: python3-libvirt, ${t} thread(s)`);
        const p = await run(python, [PY, String(n), String(t)], undefined, timeoutMs);
        if (p.code === 0) result[`python${t}`] = { threads: t, ...JSON.parse(p.out.trim().split('\n').at(-1)) };
        else log(`  peer: python3-libvirt failed: ${p.err.slice(0, 300)}`);
      }
    } else log('  peer: python3-libvirt not installed: python row skipped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}
