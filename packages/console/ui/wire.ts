/**
 * The parts of API.md's wire values (xenopsd dialect, JSON) the console reads. Values arrive as
 * the service encodes them (§3, §4): variants are `[tag, arg]` or a bare tag, options are lists.
 */
export type ErrorValue = string | [string, unknown];

/** `Vm.t` (§4.2), the fields shown. */
export interface VmConfig {
  readonly id: string;
  readonly name: string;
  readonly vcpus: number;
  readonly vcpu_max: number;
  readonly memory_static_max: number;
  readonly memory_dynamic_max: number;
  readonly ty: unknown;
  readonly [key: string]: unknown;
}

export interface Console {
  readonly protocol: string;
  readonly port: number;
  readonly path: string;
}

/** `Vm.state` (§4.3), the fields shown. */
export interface VmState {
  readonly power_state: string;
  readonly domids: readonly number[];
  readonly consoles: readonly Console[];
  readonly memory_actual: number;
  readonly vcpu_target: number;
  readonly [key: string]: unknown;
}

/** `Task.t` (§4.9). */
export interface Task {
  readonly id: string;
  readonly dbg: string;
  readonly ctime: number;
  /** `["Pending", progress]`, `["Completed", {duration, result?}]`, `["Failed", error]`. */
  readonly state: readonly [string, unknown];
  readonly cancellable: boolean;
}

/** A change record of `GET /events` (§9.4). */
export interface ChangeRecord {
  readonly seq: number;
  readonly kind: string;
  readonly id: readonly [string, unknown];
  readonly change: readonly [string, readonly [unknown, readonly unknown[]]];
  readonly event: string;
  readonly dbg: string;
  readonly time: string;
  readonly host: string;
  readonly actor: string;
  readonly traceparent?: string;
}

/** One line of `GET /log` (the audit history). */
export interface AuditEntry {
  readonly seq: number;
  readonly stream: string;
  readonly time: string;
  readonly host: string;
  readonly actor: string;
  readonly dbg: string;
  readonly event: string;
  readonly text: string;
  readonly vm?: string;
  readonly task?: string;
}

/** An error value in one line, as the CLI shows it: the tag, then its payload. */
export function describeError(e: ErrorValue): string {
  if (typeof e === 'string') return e;
  const [tag, arg] = e;
  if (arg === undefined || arg === null) return tag;
  return `${tag}: ${typeof arg === 'string' ? arg : JSON.stringify(arg)}`;
}
