/**
 * Public types of the QEMU layer: what QMP sends and receives (QEMU 7.2's schema, the parts this
 * project uses), and the options of the process and console helpers.
 */

/** The first line QEMU sends on a QMP connection. */
export interface QmpGreeting {
  QMP: {
    version: { qemu: { major: number; minor: number; micro: number }; package: string };
    capabilities: string[];
  };
}

/** Events QEMU reports on QMP that the backend reacts to; others arrive with their own name. */
export type QmpEventName =
  | 'SHUTDOWN'
  | 'POWERDOWN'
  | 'RESET'
  | 'STOP'
  | 'RESUME'
  | 'GUEST_PANICKED'
  | 'DEVICE_DELETED'
  | 'DEVICE_TRAY_MOVED'
  | 'MIGRATION'
  | 'MIGRATION_PASS'
  | 'BALLOON_CHANGE'
  | 'NIC_RX_FILTER_CHANGED'
  | 'BLOCK_IO_ERROR'
  | 'JOB_STATUS_CHANGE';

export interface QmpEvent {
  event: QmpEventName | (string & {});
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** QEMU's run states (`query-status`), e.g. `prelaunch` after `-S`, `paused` after `stop`. */
export type QemuRunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo';

export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'colo'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug';

export interface MigrationInfo {
  status?: MigrationStatus;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  ram?: { transferred: number; total: number; remaining: number; mbps: number; 'dirty-sync-count': number };
  'error-desc'?: string;
}

/**
 * Commands with known argument and result types. `QmpClient.execute` takes any other command name
 * too, with loose types.
 */
export interface QmpCommands {
  qmp_capabilities: { args: { enable?: string[] }; result: Record<string, never> };
  'query-status': { args: undefined; result: { status: QemuRunState; running: boolean; singlestep?: boolean } };
  'query-version': { args: undefined; result: QmpGreeting['QMP']['version'] };
  stop: { args: undefined; result: Record<string, never> };
  cont: { args: undefined; result: Record<string, never> };
  system_powerdown: { args: undefined; result: Record<string, never> };
  system_reset: { args: undefined; result: Record<string, never> };
  quit: { args: undefined; result: Record<string, never> };
  'blockdev-add': { args: Record<string, unknown> & { 'node-name': string; driver: string }; result: Record<string, never> };
  'blockdev-del': { args: { 'node-name': string }; result: Record<string, never> };
  device_add: { args: Record<string, unknown> & { driver: string; id: string }; result: Record<string, never> };
  device_del: { args: { id: string }; result: Record<string, never> };
  set_link: { args: { name: string; up: boolean }; result: Record<string, never> };
  balloon: { args: { value: number }; result: Record<string, never> };
  'query-balloon': { args: undefined; result: { actual: number } };
  'migrate-set-capabilities': { args: { capabilities: { capability: string; state: boolean }[] }; result: Record<string, never> };
  'migrate-set-parameters': { args: Record<string, unknown>; result: Record<string, never> };
  migrate: { args: { uri: string; detach?: boolean }; result: Record<string, never> };
  'migrate-incoming': { args: { uri: string }; result: Record<string, never> };
  'migrate_cancel': { args: undefined; result: Record<string, never> };
  'query-migrate': { args: undefined; result: MigrationInfo };
  screendump: { args: { filename: string; device?: string; head?: number }; result: Record<string, never> };
}

export type QmpCommandName = keyof QmpCommands;

export interface ExecuteOptions {
  /** Abandons the wait (the command may still run in QEMU): rejects with QmpAbortedError. */
  signal?: AbortSignal;
  /** Rejects with QmpTimeoutError when no reply came in time. Default 30 s. */
  timeoutMs?: number;
}

export interface QmpConnectOptions {
  /** How long to keep trying while the socket does not exist or refuses (QEMU still starting). Default 10 s. */
  timeoutMs?: number;
  /** Pause between attempts. Default 20 ms. */
  retryIntervalMs?: number;
  /** Ends the attempts early (e.g. the QEMU process exited): rejects with QmpConnectError. */
  signal?: AbortSignal;
  /** Longest line accepted from QEMU; longer ones are dropped as a protocol error. Default 16 MiB. */
  maxLineBytes?: number;
}

export type QemuAccel = 'tcg' | 'kvm';

export interface QemuProcessOptions {
  /** Directory of this domain's files: QMP and serial sockets, pid file, serial.log, stderr.log. */
  dir: string;
  /** Where the serial output is appended instead of `<dir>/serial.log` (a domain's log outlives its process). */
  serialLog?: string;
  /** The machine-specific arguments: memory, kernel, devices, `-incoming`, ... */
  args: readonly string[];
  /** Default `qemu-system-x86_64` (looked up in PATH). */
  binary?: string;
  /** Default `tcg`: a `/dev/kvm` that opens is no proof that a KVM guest can run. */
  accel?: QemuAccel;
  /** `-name`, shown by QEMU in `query-name` and in `ps`. */
  name?: string;
  /** Start the guest's vCPUs at once instead of paused (`-S` is the default). */
  running?: boolean;
  /**
   * Put QEMU in its own session so it outlives this process (the backend re-attaches after an
   * agent restart). Default false: QEMU shares this process's group, so Ctrl-C stops both.
   */
  detached?: boolean;
  /** Bound on spawn → QMP ready; past it the process is killed. Default 30 s. */
  startTimeoutMs?: number;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How the process ended when `stop` ended it. */
  stoppedBy?: 'quit' | 'SIGTERM' | 'SIGKILL' | 'already-exited';
}

export interface QemuStopOptions {
  /** Wait after QMP `quit` before SIGTERM. Default 5 s. */
  quitTimeoutMs?: number;
  /** Wait after SIGTERM before SIGKILL. Default 3 s. */
  termTimeoutMs?: number;
  /** Wait after SIGKILL before giving up with QemuStopError. Default 5 s. */
  killTimeoutMs?: number;
}

export interface SerialWaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}
