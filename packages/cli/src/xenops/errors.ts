/**
 * CLI failures and their exit codes. Every failure is printed as one line on stderr,
 * `xenops <command>: <what went wrong>; <what to do>`, and ends the process with the exit code of
 * its class (the table is printed by `xenops --help`).
 */
export const ExitCode = {
  OK: 0,
  /** Anything not covered below (server Internal_error, unexpected reply). */
  GENERIC: 1,
  /** Bad command line, bad configuration file, invalid argument value, ambiguous VM name. */
  USAGE: 2,
  /** VM, device or task does not exist. */
  NOT_FOUND: 3,
  /** The object is in the wrong state for the operation (power state, plugged/unplugged, exists). */
  STATE: 4,
  /** Cannot reach the service (HTTP, Unix socket or NATS). */
  CONNECTION: 5,
  /** The operation's task failed or was cancelled (e.g. the guest did not shut down in time). */
  TASK_FAILED: 6,
  /** The server does not implement this call yet. */
  UNIMPLEMENTED: 7,
  /** The server refused the credentials (missing or wrong token; NATS credentials or TLS). */
  AUTH: 8,
  /** Interrupted by Ctrl-C. */
  INTERRUPTED: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_TABLE: ReadonlyArray<readonly [number, string]> = [
  [ExitCode.OK, 'success'],
  [ExitCode.GENERIC, 'other error (internal error reported by the server, unexpected reply)'],
  [ExitCode.USAGE, 'usage: bad option or argument, malformed config file, ambiguous VM name'],
  [ExitCode.NOT_FOUND, 'not found: no such VM, device or task'],
  [ExitCode.STATE, 'wrong state: e.g. the VM is Running and must be Halted; device plugged'],
  [ExitCode.CONNECTION, 'cannot connect to the service (HTTP, Unix socket or NATS)'],
  [ExitCode.TASK_FAILED, 'the task failed or was cancelled (e.g. guest did not shut down in time)'],
  [ExitCode.UNIMPLEMENTED, 'the server does not offer this operation yet'],
  [ExitCode.AUTH, 'the server refused the token (see --token-file), or NATS the credentials or TLS (--nats-creds, --nats-nkey, --nats-tls-ca)'],
  [ExitCode.INTERRUPTED, 'interrupted (Ctrl-C)'],
];

/** A failure to report: `message` is the part after `xenops <command>: `. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly code: number,
    /** The server's error value, when the failure came from the server (for `--json`). */
    readonly errorValue?: unknown,
  ) {
    super(message);
  }
}

export const usageError = (message: string): CliError => new CliError(message, ExitCode.USAGE);
