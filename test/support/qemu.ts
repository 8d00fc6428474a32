/**
 * Helpers for the end-to-end tests that boot the tiny guest (`npm run guest-image`) under the QEMU
 * backend: its VM configuration, the guest's serial console (read from `serial.log`, written to
 * through the serial socket), and the QEMU processes of a data dir (found in /proc, so a test can
 * say "no process left" and kill what a failed test left behind).
 */
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { processesMentioning, tinyGuestVm } from '../../packages/actors/src/testing/tiny-guest.js';

/** A xenopsd-dialect VM that boots the tiny guest directly (PVH), small enough for CI. */
export const tinyVm = tinyGuestVm;

/** The directory the QEMU backend keeps a VM's domain in (ids here are safe file names). */
export const domainDir = (dataDir: string, vm: string): string => path.join(dataDir, 'qemu', vm);

/** The guest's serial console of one VM: lines read from serial.log, commands typed into the socket. */
export class GuestConsole {
  private offset = 0;
  constructor(readonly dir: string) {}

  private get log(): string {
    return path.join(this.dir, 'serial.log');
  }

  /** Lines from now on only. */
  mark(): void {
    try {
      this.offset = statSync(this.log).size;
    } catch {
      this.offset = 0;
    }
  }

  /** Complete lines after the mark. */
  lines(): string[] {
    let text = '';
    try {
      text = readFileSync(this.log).subarray(this.offset).toString('utf8');
    } catch {
      return [];
    }
    const parts = text.split('\n');
    parts.pop();
    return parts.map((l) => l.replace(/\r$/, ''));
  }

  /** Waits for a line after the mark matching `re`; returns it and moves the mark past it. */
  async waitFor(re: RegExp, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = this.lines();
      const i = all.findIndex((l) => re.test(l));
      if (i >= 0) {
        this.offset += Buffer.byteLength(all.slice(0, i + 1).join('\n') + '\n');
        return all[i]!;
      }
      if (Date.now() > deadline) throw new Error(`no serial line matching ${re} within ${timeoutMs} ms in ${this.log}; last lines: ${JSON.stringify(all.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Types a command on the guest's console (one connection per command: QEMU serves one client at a time). */
  async type(command: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(path.join(this.dir, 'serial.sock'));
      s.once('error', reject);
      // Stay connected a moment: QEMU reads what a client sent before it notices the client left.
      s.once('connect', () => s.write(`${command}\n`, () => setTimeout(() => s.end(() => resolve()), 300)));
    });
  }

  /** Types `command` until the guest answers with a line matching `answer` (up to three times). */
  async order(command: string, answer: RegExp): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      await this.type(command);
      try {
        return await this.waitFor(answer, 15_000);
      } catch (e) {
        if (attempt === 3) throw e;
      }
    }
  }

  /** Asks the guest for `lsblk` / `lsnet` and returns its answer lines. */
  async ask(command: 'lsblk' | 'lsnet'): Promise<string[]> {
    this.mark();
    const from = this.offset;
    await this.type(command);
    await this.waitFor(new RegExp(`xenops-guest ${command} done`), 20_000);
    const answer = readFileSync(this.log).subarray(from, this.offset).toString('utf8').split('\n').map((l) => l.replace(/\r$/, ''));
    const prefix = command === 'lsblk' ? 'xenops-guest blk ' : 'xenops-guest net ';
    return answer.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  }
}

/** QEMU processes whose command line names a QMP socket under `dataDir`/qemu. */
export function qemuPids(dataDir: string, vm?: string): number[] {
  return processesMentioning(vm ? `path=${domainDir(dataDir, vm)}/qmp.sock,` : `path=${path.join(dataDir, 'qemu')}/`);
}

/** SIGKILLs every QEMU of `dataDir` (what a failed test left). */
export async function killQemu(dataDir: string): Promise<void> {
  for (const pid of qemuPids(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 5_000;
  while (qemuPids(dataDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
