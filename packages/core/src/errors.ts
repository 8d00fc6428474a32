/**
 * Xenops errors. An error value is a variant in its xenopsd wire form (API.md §6): a bare tag
 * (`"Domain_not_built"`) or `[tag, payload]`. It travels unchanged through tasks, the log and the
 * bus; only the gateway's seed encoder rewrites it (§6.4).
 */
export type ErrorValue = string | [string, unknown];

export class XenopsError extends Error {
  override readonly name = 'XenopsError';
  constructor(
    readonly value: ErrorValue,
    options?: { readonly cause?: unknown },
  ) {
    super(describeError(value), options);
  }
  get tag(): string {
    return typeof this.value === 'string' ? this.value : this.value[0];
  }
}

export function describeError(v: ErrorValue): string {
  if (typeof v === 'string') return v;
  const [tag, payload] = v;
  if (tag === 'Bad_power_state' && Array.isArray(payload)) {
    return `Bad_power_state: VM is ${String(payload[0])}, expected ${String(payload[1])}`;
  }
  if (typeof payload === 'string') return `${tag}: ${payload}`;
  return `${tag}: ${JSON.stringify(payload)}`;
}

export type PowerState = 'Running' | 'Halted' | 'Suspended' | 'Paused';

export const Errors = {
  internal: (msg: string) => new XenopsError(['Internal_error', msg]),
  unimplemented: (name: string) => new XenopsError(['Unimplemented', name]),
  doesNotExist: (kind: string, key: string) => new XenopsError(['Does_not_exist', [kind, key]]),
  vmDoesNotExist: (vm: string) => new XenopsError(['Does_not_exist', ['VM', `${vm}/config`]]),
  domainDoesNotExist: (vm: string) => new XenopsError(['Does_not_exist', ['domain', vm]]),
  taskDoesNotExist: (id: string) => new XenopsError(['Does_not_exist', ['task', id]]),
  alreadyExists: (kind: string, key: string) => new XenopsError(['Already_exists', [kind, key]]),
  badPowerState: (actual: PowerState, expected: PowerState) =>
    new XenopsError(['Bad_power_state', [actual, expected]]),
  domainNotBuilt: () => new XenopsError('Domain_not_built'),
  invalidVcpus: (max: number) => new XenopsError(['Invalid_vcpus', max]),
  cancelled: (taskId: string) => new XenopsError(['Cancelled', taskId]),
  failedToAcknowledgeShutdown: () => new XenopsError('Failed_to_acknowledge_shutdown_request'),
  failedToShutdown: (vm: string, timeout: number) => new XenopsError(['Failed_to_shutdown', [vm, timeout]]),
  failedToAcknowledgeSuspend: () => new XenopsError('Failed_to_acknowledge_suspend_request'),
  failedToSuspend: (vm: string, timeout: number) => new XenopsError(['Failed_to_suspend', [vm, timeout]]),
  failedToContactRemoteService: (url: string) => new XenopsError(['Failed_to_contact_remote_service', url]),
  interruptedByRestart: () => new XenopsError(['Internal_error', 'Interrupted by service restart']),
  /** The agent could not write the task's progress (the store was unreachable) and dropped it. */
  interruptedByStoreOutage: () => new XenopsError(['Internal_error', 'Interrupted: the event log could not be written (the store was unreachable)']),
  fromValue: (value: ErrorValue) => new XenopsError(value),
  deviceIsConnected: () => new XenopsError('Device_is_connected'),
  deviceNotConnected: () => new XenopsError('Device_not_connected'),
  mediaNotEjectable: () => new XenopsError('Media_not_ejectable'),
  timedOutWaitingOnTask: (id: string) => new XenopsError(['Internal_error', `Timed out while waiting on task ${id}`]),
  // What a real backend's world can refuse (API.md §8.4).
  failedToStartEmulator: (vm: string, emulator: string, lastLine: string) => new XenopsError(['Failed_to_start_emulator', [vm, emulator, lastLine]]),
  storageBackendError: (code: string, params: readonly string[]) => new XenopsError(['Storage_backend_error', [code, [...params]]]),
  deviceDetachRejected: (kind: string, id: string, why: string) => new XenopsError(['Device_detach_rejected', [kind, id, why]]),
  mediaPresent: () => new XenopsError('Media_present'),
  mediaNotPresent: () => new XenopsError('Media_not_present'),
  noBootableDevice: () => new XenopsError('No_bootable_device'),
  bootloaderError: (bootloader: string, why: string) => new XenopsError(['Bootloader_error', [bootloader, why]]),
  notEnoughMemory: (bytes: number) => new XenopsError(['Not_enough_memory', bytes]),
  pcibackNotLoaded: () => new XenopsError('PCIBack_not_loaded'),
} as const;

/** Any thrown value as a xenops error value; unknown exceptions become Internal_error. */
export function toErrorValue(e: unknown): ErrorValue {
  if (e instanceof XenopsError) return e.value;
  if (e instanceof Error) return ['Internal_error', e.message];
  return ['Internal_error', String(e)];
}
