import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, fstatSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmulatorStartError, QemuAttachError, QemuStopError } from './errors.js';
import { QmpClient } from './qmp-client.js';
import type { QemuExit, QemuProcessOptions, QemuStopOptions } from './types.js';

export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';
const DEFAULT_START_TIMEOUT_MS = 30_000;
/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

/** The files of one domain's directory. serial.log is appended to across restarts of the domain. */
export interface QemuPaths {
  dir: string;
  qmp: string;
  serial: string;
  serialLog: string;
  pidFile: string;
  /** QEMU's stdout and stderr (appended); its last line explains a failed start. */
  stderrLog: string;
}

export function qemuPaths(dir: string): QemuPaths {
  return {
    dir,
    qmp: join(dir, 'qmp.sock'),
    serial: join(dir, 'serial.sock'),
    serialLog: join(dir, 'serial.log'),
    pidFile: join(dir, 'qemu.pid'),
    stderrLog: join(dir, 'stderr.log'),
  };
}

/** QEMU's option syntax doubles a comma inside a value. */
const optValue = (s: string) => s.replaceAll(',', ',,');

/**
 * The arguments every domain gets, before the machine-specific ones: q35, the accelerator, nothing
 * implicit (-nodefaults -no-user-config, no display window), paused unless asked otherwise, QMP
 * and the serial console on Unix sockets that never block QEMU waiting for a client, the serial
 * output also logged to serial.log, and a pid file.
 */
export function baseArgs(paths: QemuPaths, options: Pick<QemuProcessOptions, 'accel' | 'name' | 'running'>): string[] {
  return [
    ...(options.name ? ['-name', optValue(options.name)] : []),
    '-machine', 'q35',
    '-accel', options.accel ?? 'tcg',
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    ...(options.running ? [] : ['-S']),
    // The long form of `-qmp unix:PATH,server=on,wait=off`: its compact syntax cannot escape a comma in PATH.
    '-chardev', `socket,id=qmp,path=${optValue(paths.qmp)},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
    '-chardev', `socket,id=serial0,path=${optValue(paths.serial)},server=on,wait=off,logfile=${optValue(paths.serialLog)},logappend=on`,
    '-serial', 'chardev:serial0',
    '-pidfile', paths.pidFile,
  ];
}

/**
 * The line that explains a failure in QEMU's output after byte `from`: the last line QEMU
 * reported as an error (prefixed with its program name; hints that follow an error are not), else
 * the last non-empty line, else "". Reads only the file's tail.
 */
export function lastErrorLine(path: string, binary: string, from = 0): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.max(0, Math.min(size - from, 8192));
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    const prefix = `${basename(binary)}: `;
    return lines.findLast((l) => l.startsWith(prefix)) ?? lines.at(-1) ?? '';
  } finally {
    closeSync(fd);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie still answers kill(0): it has exited, only its parent has not collected it.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Whether `pid` is a QEMU serving this directory's QMP socket (not an unrelated process that reused the pid). */
function isQemuOf(pid: number, paths: QemuPaths): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(`path=${optValue(paths.qmp)},`));
  } catch {
    return false;
  }
}

function readPid(paths: QemuPaths): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(paths.pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One `qemu-system-x86_64` process and its QMP connection. `start` spawns it (paused by default)
 * and returns once QMP answers; `attach` takes over one a previous agent started; `stop` ends it
 * (QMP `quit`, then SIGTERM, then SIGKILL, each wait bounded).
 */
export class QemuProcess {
  private exitInfo: QemuExit | undefined;
  /** Set by `detach`: the QMP connection was closed on purpose, the process runs on. */
  private detachedFromAgent = false;
  /** Settles once the process has exited and its sockets and pid file are removed. */
  private readonly exit: Promise<QemuExit>;

  private constructor(
    readonly pid: number,
    readonly paths: QemuPaths,
    readonly qmp: QmpClient,
    exit: Promise<QemuExit>,
    /** Spawn → QMP negotiated, in ms (undefined for an attached process). */
    readonly startupMs: number | undefined,
    private readonly binary: string,
    /** Where this process's output starts in stderr.log (the file is appended to across runs). */
    private readonly stderrFrom: number,
  ) {
    // Clean-up is part of the exit, so a caller that awaits it can start a new QEMU in the same
    // directory without this one's clean-up removing the new sockets.
    this.exit = exit.then(async (e) => {
      await this.cleanUp();
      this.exitInfo = e;
      return e;
    });
  }

  /**
   * Spawns QEMU with `baseArgs` + `options.args` and connects QMP. Rejects with EmulatorStartError
   * (carrying QEMU's last stderr line) if QEMU exits first or QMP does not answer within
   * `startTimeoutMs`; no process is left behind then.
   */
  static async start(options: QemuProcessOptions): Promise<QemuProcess> {
    const binary = options.binary ?? DEFAULT_QEMU_BINARY;
    const paths = { ...qemuPaths(options.dir), ...(options.serialLog !== undefined ? { serialLog: options.serialLog } : {}) };
    let stderrFrom = 0;
    const fail = (reason: string, cause?: unknown) =>
      new EmulatorStartError(binary, lastErrorLine(paths.stderrLog, binary, stderrFrom), reason, cause === undefined ? undefined : { cause });
    for (const p of [paths.qmp, paths.serial]) {
      if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) throw new EmulatorStartError(binary, '', `socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes: ${p}`);
    }
    mkdirSync(paths.dir, { recursive: true });
    const previous = readPid(paths);
    if (previous !== undefined && isAlive(previous) && isQemuOf(previous, paths)) {
      throw new EmulatorStartError(binary, '', `QEMU process ${previous} already runs in ${paths.dir}`);
    }
    for (const p of [paths.qmp, paths.serial, paths.pidFile]) rmSync(p, { force: true });

    const argv = [...baseArgs(paths, options), ...options.args];
    const log = openSync(paths.stderrLog, 'a');
    stderrFrom = fstatSync(log).size;
    const started = performance.now();
    let child: ChildProcess;
    try {
      child = spawn(binary, argv, { stdio: ['ignore', log, log], detached: options.detached ?? false });
    } finally {
      closeSync(log);
    }
    const exit = new Promise<QemuExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      // spawn failures (binary missing, not executable) arrive as 'error' with no 'exit'.
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (options.detached) child.unref();

    const gone = new AbortController();
    void exit.then(() => gone.abort(new Error('QEMU exited')));
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(paths.qmp, { timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, signal: gone.signal });
    } catch (err) {
      if (child.pid === undefined) throw fail(`cannot run ${binary}: ${(await spawnError).message}`, await spawnError);
      if (!gone.signal.aborted) {
        child.kill('SIGKILL');
        await exit;
        throw fail(`QMP did not answer within ${options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms`, err);
      }
      const e = await exit;
      throw fail(`exited (${e.signal ?? `code ${e.code}`}) before QMP answered`, err);
    }
    return new QemuProcess(child.pid as number, paths, qmp, exit, performance.now() - started, binary, stderrFrom);
  }

  /**
   * Takes over the QEMU of `dir` that another process started (the agent restarted): reads the pid
   * file, checks the process is that directory's QEMU, connects QMP. Rejects with QemuAttachError.
   */
  static async attach(dir: string, options: { timeoutMs?: number } = {}): Promise<QemuProcess> {
    const paths = qemuPaths(dir);
    const pid = readPid(paths);
    if (pid === undefined) throw new QemuAttachError(dir, 'no pid file');
    if (!isAlive(pid)) throw new QemuAttachError(dir, `process ${pid} is gone`);
    if (!isQemuOf(pid, paths)) throw new QemuAttachError(dir, `process ${pid} is not the QEMU of this directory`);
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(paths.qmp, { timeoutMs: options.timeoutMs ?? 5_000 });
    } catch (err) {
      throw new QemuAttachError(dir, (err as Error).message, { cause: err });
    }
    // Not our child: no exit status. The QMP socket closes when the process dies; then wait for the pid to go.
    let attached: QemuProcess | undefined;
    const exit = qmp.whenClosed().then(async () => {
      // A detach closes QMP too, but the process runs on: this exit never comes.
      if (attached?.detachedFromAgent) return new Promise<QemuExit>(() => {});
      while (isAlive(pid)) await sleep(20);
      return { code: null, signal: null } satisfies QemuExit;
    });
    attached = new QemuProcess(pid, paths, qmp, exit, undefined, DEFAULT_QEMU_BINARY, 0);
    return attached;
  }

  /** Resolves when the process has exited (code and signal are null for an attached process). */
  exited(): Promise<QemuExit> {
    return this.exit;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** The last error this QEMU wrote to stderr (see lastErrorLine). */
  lastStderrLine(): string {
    return lastErrorLine(this.paths.stderrLog, this.binary, this.stderrFrom);
  }

  /**
   * Ends the process: QMP `quit`, then SIGTERM, then SIGKILL, waiting at most the given bound after
   * each. Resolves with how it ended; rejects with QemuStopError if even SIGKILL did not end it.
   */
  async stop(options: QemuStopOptions = {}): Promise<QemuExit> {
    if (this.exitInfo) return { ...this.exitInfo, stoppedBy: 'already-exited' };
    const within = async (ms: number) => {
      const timer = new AbortController();
      const waited = sleep(ms, undefined, { signal: timer.signal }).then(() => false, () => false);
      const exited = await Promise.race([this.exit.then(() => true), waited]);
      timer.abort();
      return exited;
    };
    if (this.qmp.isOpen) {
      const quitMs = options.quitTimeoutMs ?? 5_000;
      // A lost connection while quitting is QEMU exiting: the wait below tells.
      await this.qmp.execute('quit', undefined, { timeoutMs: quitMs }).catch(() => undefined);
      if (await within(quitMs)) return { ...(await this.exit), stoppedBy: 'quit' };
    }
    for (const [signal, ms] of [['SIGTERM', options.termTimeoutMs ?? 3_000], ['SIGKILL', options.killTimeoutMs ?? 5_000]] as const) {
      try {
        process.kill(this.pid, signal);
      } catch {
        /* already gone: the wait below returns at once */
      }
      if (await within(ms)) return { ...(await this.exit), stoppedBy: signal };
    }
    throw new QemuStopError(this.pid);
  }

  /**
   * Lets the process run on without this agent: closes the QMP connection (QEMU then accepts the
   * next agent's) and keeps the sockets and pid file. A process started `detached` survives it.
   */
  async detach(): Promise<void> {
    this.detachedFromAgent = true;
    await this.qmp.close();
  }

  private async cleanUp(): Promise<void> {
    await this.qmp.close();
    // QEMU leaves its listening sockets behind when it does not exit cleanly; serial.log stays.
    for (const p of [this.paths.qmp, this.paths.serial, this.paths.pidFile]) rmSync(p, { force: true });
  }
}
