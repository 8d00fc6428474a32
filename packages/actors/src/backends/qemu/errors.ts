/**
 * Typed errors of the QEMU layer. Each has a `name` (its class), a stable `code` to switch on, and
 * the underlying error as `cause` where there is one.
 */

export type QemuErrorCode =
  | 'QMP_CONNECT_FAILED'
  | 'QMP_COMMAND_FAILED'
  | 'QMP_TIMEOUT'
  | 'QMP_ABORTED'
  | 'QMP_CONNECTION_LOST'
  | 'QMP_CLOSED'
  | 'QMP_PROTOCOL'
  | 'QEMU_START_FAILED'
  | 'QEMU_STOP_FAILED'
  | 'QEMU_ATTACH_FAILED'
  | 'SERIAL_CONNECT_FAILED'
  | 'SERIAL_TIMEOUT'
  | 'SERIAL_CLOSED'
  | 'GUEST_IMAGE_MISSING';

export abstract class QemuError extends Error {
  abstract readonly code: QemuErrorCode;
}

/** The QMP socket did not accept a connection in time, or the handshake failed. */
export class QmpConnectError extends QemuError {
  override readonly name = 'QmpConnectError';
  readonly code = 'QMP_CONNECT_FAILED';
  constructor(
    readonly path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot connect to QMP at ${path}: ${reason}`, options);
  }
}

/** QEMU answered the command with an error (`{"error": {"class", "desc"}}`). */
export class QmpCommandError extends QemuError {
  override readonly name = 'QmpCommandError';
  readonly code = 'QMP_COMMAND_FAILED';
  constructor(
    readonly command: string,
    /** QMP's error class, e.g. `GenericError`, `CommandNotFound`, `DeviceNotFound`. */
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
  }
}

export class QmpTimeoutError extends QemuError {
  override readonly name = 'QmpTimeoutError';
  readonly code = 'QMP_TIMEOUT';
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`QMP ${command} got no reply within ${timeoutMs} ms`);
  }
}

/** The caller's signal ended the wait; the cause is the signal's reason. */
export class QmpAbortedError extends QemuError {
  override readonly name = 'QmpAbortedError';
  readonly code = 'QMP_ABORTED';
  constructor(
    readonly command: string,
    options?: ErrorOptions,
  ) {
    super(`QMP ${command} was abandoned`, options);
  }
}

/** The socket closed or failed while the client was open (QEMU exited or crashed). */
export class QmpConnectionLostError extends QemuError {
  override readonly name = 'QmpConnectionLostError';
  readonly code = 'QMP_CONNECTION_LOST';
  constructor(
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`QMP connection ${path} was lost`, options);
  }
}

/** The client was closed by its owner; pending and later commands fail with this. */
export class QmpClosedError extends QemuError {
  override readonly name = 'QmpClosedError';
  readonly code = 'QMP_CLOSED';
  constructor(readonly path: string) {
    super(`QMP connection ${path} is closed`);
  }
}

export type QmpProtocolViolation =
  | 'not-json'
  | 'unexpected-shape'
  | 'unknown-id'
  | 'missing-id'
  | 'line-too-long'
  | 'bad-greeting';

/**
 * QEMU sent something QMP does not allow. Reported on the client's `protocol-error` event (the
 * connection stays usable) or, during the handshake, as the cause of a QmpConnectError.
 */
export class QmpProtocolError extends QemuError {
  override readonly name = 'QmpProtocolError';
  readonly code = 'QMP_PROTOCOL';
  constructor(
    readonly violation: QmpProtocolViolation,
    /** The offending line, cut to 200 characters. */
    readonly line: string,
    options?: ErrorOptions,
  ) {
    super(`QMP protocol violation (${violation}): ${line}`, options);
  }
}

/** QEMU exited or did not answer on QMP before it was ready. `stderrLine` says why, when it said. */
export class EmulatorStartError extends QemuError {
  override readonly name = 'EmulatorStartError';
  readonly code = 'QEMU_START_FAILED';
  constructor(
    readonly binary: string,
    /** The last error line QEMU wrote to stderr ("" when it wrote none). */
    readonly stderrLine: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${binary} failed to start: ${stderrLine || reason}`, options);
  }
}

/** The process survived quit, SIGTERM and SIGKILL within their bounds (e.g. stuck in the kernel). */
export class QemuStopError extends QemuError {
  override readonly name = 'QemuStopError';
  readonly code = 'QEMU_STOP_FAILED';
  constructor(readonly pid: number) {
    super(`QEMU process ${pid} did not exit after SIGKILL`);
  }
}

/** No live QEMU of this directory to attach to (no pid file, process gone, or not ours). */
export class QemuAttachError extends QemuError {
  override readonly name = 'QemuAttachError';
  readonly code = 'QEMU_ATTACH_FAILED';
  constructor(
    readonly dir: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot attach to the QEMU of ${dir}: ${reason}`, options);
  }
}

export class SerialConnectError extends QemuError {
  override readonly name = 'SerialConnectError';
  readonly code = 'SERIAL_CONNECT_FAILED';
  constructor(
    readonly path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot connect to the serial console at ${path}: ${reason}`, options);
  }
}

export class SerialTimeoutError extends QemuError {
  override readonly name = 'SerialTimeoutError';
  readonly code = 'SERIAL_TIMEOUT';
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
    /** The last lines seen, to tell what the guest did instead. */
    readonly recentLines: readonly string[],
  ) {
    super(`no serial line matched ${pattern} within ${timeoutMs} ms; last lines:\n${recentLines.join('\n')}`);
  }
}

/** The console was closed (by its owner, or QEMU went away) before a matching line came. */
export class SerialClosedError extends QemuError {
  override readonly name = 'SerialClosedError';
  readonly code = 'SERIAL_CLOSED';
  constructor(
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`serial console ${path} is closed`, options);
  }
}

/** `npm run guest-image` has not built the tiny guest where it was looked for. */
export class GuestImageMissingError extends QemuError {
  override readonly name = 'GuestImageMissingError';
  readonly code = 'GUEST_IMAGE_MISSING';
  constructor(
    readonly dir: string,
    options?: ErrorOptions,
  ) {
    super(`no tiny guest image in ${dir}: run \`npm run guest-image\` (or set XENOPS_GUEST_IMAGE_DIR)`, options);
  }
}
