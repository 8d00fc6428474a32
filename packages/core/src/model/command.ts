import { xenops } from '../../generated/xenops.js';
import type { ErrorValue } from '../errors.js';
import { VmT, type Type, type VmConfig } from '../idl/index.js';
import { DEVICE_TYPES, isDeviceKind, type DeviceConfig, type DeviceKind } from './devices.js';
import { wireToJson } from '../idl/wire.js';
import { IllFormedStringError, NestingLimitError, parseUntrustedJson, singleLine } from '../idl/wire-checks.js';
import { decodeOperation, type Operation } from './operation.js';

/** What a gateway asks a host agent to decide (carried on the command bus). */
export type Command =
  /** Register or replace a configuration; `refuseExisting` is the seed dialect's Vm.add. */
  | { readonly type: 'AddVm'; readonly config: VmConfig; readonly refuseExisting: boolean }
  /** VBD/VIF/PCI/VGPU/VUSB.add: store (overwrite) a device record; the VM must exist. */
  | { readonly type: 'AddDevice'; readonly device: DeviceConfig }
  /** Device remove: refused while plugged (Device_is_connected). */
  | { readonly type: 'RemoveDevice'; readonly vmId: string; readonly kind: DeviceKind; readonly dev: string }
  /** VM.import_metadata of a VM that does not exist yet (seed: refusing an existing id). */
  | { readonly type: 'ImportVm'; readonly vmId: string; readonly metadataJson: string; readonly refuseExisting: boolean }
  /** Queue an operation on the VM; the reply is the new task's id. */
  | {
      readonly type: 'SubmitOperation';
      readonly vmId: string;
      readonly operation: Operation;
      /** VM.start / VM.resume of a free VM: why the gateway sent it to this host (§9.7), recorded with the claim. */
      readonly placement?: string;
    }
  | { readonly type: 'CancelTask'; readonly vmId: string; readonly taskId: string }
  /** Task.destroy_on_finish of a task that has not ended yet. */
  | { readonly type: 'DestroyTaskOnFinish'; readonly vmId: string; readonly taskId: string }
  /** Task.destroy (one task) and the task reaper (every expired task of the VM): the records go. */
  | { readonly type: 'DestroyTask'; readonly vmId: string; readonly taskIds: readonly string[] }
  /** DEBUG.trigger (API.md §8.3): checked by the engine, carried out by the backend (or the host, set-cancel-trigger). */
  | { readonly type: 'DebugTrigger'; readonly cmd: string; readonly args: readonly string[] }
  /** HOST.set_worker_pool_size: addressed to the host, not to a VM. */
  | { readonly type: 'SetPoolSize'; readonly size: number }
  /** HOST.send_debug_keys, HOST.update_guest_agent_features, HOST.set_numa_affinity_policy: a stored host setting. */
  | { readonly type: 'SetHostSetting'; readonly key: string; readonly value: unknown }
  /** get_diagnostics: the agent's worker pool and queues. */
  | { readonly type: 'Diagnose' }
  /** HOST.stat, HOST.get_total_memory_mib, HOST.get_console_data: the backend's host facts. */
  | { readonly type: 'HostFacts' }
  /**
   * A piece of a migrating domain's state (§7.8), from the source's agent to the destination's:
   * bytes `offset`.. of `total`, base64. The reply acknowledges it; the last one, the whole state.
   */
  | { readonly type: 'MigrationChunk'; readonly vmId: string; readonly transferId: string; readonly offset: number; readonly total: number; readonly data: string }
  /**
   * Before a migration's state is sent (§7.8): the destination's backend gets ready to receive it
   * (QEMU: a process waiting for the stream) and answers where to send it. `payload` is JSON the
   * source's backend wrote for the destination's.
   */
  | { readonly type: 'MigrationPrepare'; readonly vmId: string; readonly transferId: string; readonly payload: string }
  /**
   * The switch-over passed a migration's task to this host: its agent takes it over (idempotent).
   * `state`: the VM as the source folded it at the switch-over (base64), spared a read of the log.
   */
  | { readonly type: 'TakeOverMigration'; readonly vmId: string; readonly taskId: string; readonly state?: string };

/** Commands addressed to a host agent as a whole rather than to one VM's actor. */
export type HostCommand = Extract<
  Command,
  { type: 'SetPoolSize' | 'SetHostSetting' | 'Diagnose' | 'HostFacts' | 'DebugTrigger' | 'MigrationPrepare' | 'MigrationChunk' | 'TakeOverMigration' }
>;

/** Settings HOST.* calls store (`SetHostSetting`); anything else is refused at decoding. */
export const HOST_SETTING_KEYS: ReadonlySet<string> = new Set(['debug_keys', 'guest_agent_features', 'numa_affinity_policy']);

export interface CommandRequest {
  readonly dbg: string;
  readonly command: Command;
}

/** `seq`: the log position the answer depends on; the gateway reads its own writes from there. */
export type CommandReply = { readonly ok: true; readonly seq: number; readonly value: unknown } | { readonly ok: false; readonly seq: number; readonly error: ErrorValue };

export class CommandDecodeError extends Error {
  override readonly name = 'CommandDecodeError';
  readonly code = 'UNDECODABLE_COMMAND';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const pb = xenops.v1;

export function encodeCommand(req: CommandRequest): Uint8Array {
  const c = req.command;
  // Configurations are written once, in the IDL's internal encoding, straight into the JSON text.
  const json =
    c.type === 'AddVm'
      ? `{"type":"AddVm","refuseExisting":${c.refuseExisting},"config":${wireToJson(VmT.encode(c.config, 'internal'))}}`
      : c.type === 'AddDevice'
        ? `{"type":"AddDevice","kind":${JSON.stringify(c.device.kind)},"config":${wireToJson((DEVICE_TYPES[c.device.kind] as Type<unknown>).encode(c.device.config, 'internal'))}}`
        : JSON.stringify(c);
  return pb.CommandEnvelope.encode({ dbg: req.dbg, commandJson: json }).finish();
}

/** Validates a command received from the bus; malformed input is a CommandDecodeError, never a crash. */
export function decodeCommand(data: Uint8Array): CommandRequest {
  let env: ReturnType<typeof pb.CommandEnvelope.decode>;
  let raw: unknown;
  try {
    // Strings of the envelope are strict UTF-8 (protobufjs refuses anything else).
    env = pb.CommandEnvelope.decode(data);
    // One parse; configurations inside are decoded by the IDL from this same tree. Anyone who may
    // publish on the command subject reaches this point: nesting and strings are checked as for
    // a request (a lone surrogate here would end up in the log).
    raw = parseUntrustedJson(env.commandJson ?? '', 'command');
  } catch (e) {
    if (e instanceof IllFormedStringError || e instanceof NestingLimitError) throw new CommandDecodeError(e.message, { cause: e });
    throw new CommandDecodeError(`undecodable command: ${singleLine((e as Error).message)}`, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null) throw new CommandDecodeError('command is not an object');
  const o = raw as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof o[k] !== 'string' || o[k] === '') throw new CommandDecodeError(`command ${String(o.type)}: missing ${k}`);
    return o[k] as string;
  };
  const dbg = env.dbg ?? '';
  switch (o.type) {
    case 'AddVm': {
      let config: VmConfig;
      try {
        config = VmT.decode(o.config, 'vm');
      } catch (e) {
        throw new CommandDecodeError(`AddVm: ${(e as Error).message}`);
      }
      return { dbg, command: { type: 'AddVm', config, refuseExisting: o.refuseExisting === true } };
    }
    case 'AddDevice': {
      const kind = String(o.kind);
      if (!isDeviceKind(kind)) throw new CommandDecodeError(`AddDevice: unknown device kind ${JSON.stringify(o.kind)}`);
      try {
        const config = (DEVICE_TYPES[kind] as Type<unknown>).decode(o.config, kind);
        return { dbg, command: { type: 'AddDevice', device: { kind, config } as DeviceConfig } };
      } catch (e) {
        throw new CommandDecodeError(`AddDevice: ${(e as Error).message}`);
      }
    }
    case 'RemoveDevice': {
      const kind = str('kind');
      if (!isDeviceKind(kind)) throw new CommandDecodeError(`RemoveDevice: unknown device kind ${kind}`);
      return { dbg, command: { type: 'RemoveDevice', vmId: str('vmId'), kind, dev: str('dev') } };
    }
    case 'ImportVm':
      return { dbg, command: { type: 'ImportVm', vmId: str('vmId'), metadataJson: str('metadataJson'), refuseExisting: o.refuseExisting === true } };
    case 'SubmitOperation':
      try {
        const placement = o.placement === undefined ? {} : { placement: str('placement') };
        return { dbg, command: { type: 'SubmitOperation', vmId: str('vmId'), operation: decodeOperation(o.operation), ...placement } };
      } catch (e) {
        if (e instanceof CommandDecodeError) throw e;
        throw new CommandDecodeError(`SubmitOperation: ${(e as Error).message}`);
      }
    case 'MigrationChunk': {
      const offset = o.offset;
      const total = o.total;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(total) || (offset as number) < 0 || (total as number) < 0 || (offset as number) > (total as number)) {
        throw new CommandDecodeError('MigrationChunk: offset and total must be integers with 0 <= offset <= total');
      }
      if (typeof o.data !== 'string') throw new CommandDecodeError('MigrationChunk: data must be a base64 string');
      return { dbg, command: { type: 'MigrationChunk', vmId: str('vmId'), transferId: str('transferId'), offset: offset as number, total: total as number, data: o.data } };
    }
    case 'TakeOverMigration':
      if (o.state !== undefined && typeof o.state !== 'string') throw new CommandDecodeError('TakeOverMigration: state must be a base64 string');
      return { dbg, command: { type: 'TakeOverMigration', vmId: str('vmId'), taskId: str('taskId'), ...(o.state !== undefined ? { state: o.state as string } : {}) } };
    case 'MigrationPrepare':
      if (typeof o.payload !== 'string') throw new CommandDecodeError('MigrationPrepare: payload must be a JSON string');
      return { dbg, command: { type: 'MigrationPrepare', vmId: str('vmId'), transferId: str('transferId'), payload: o.payload } };
    case 'CancelTask':
    case 'DestroyTaskOnFinish':
      return { dbg, command: { type: o.type, vmId: str('vmId'), taskId: str('taskId') } };
    case 'DestroyTask': {
      const ids = o.taskIds;
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((t) => typeof t === 'string' && t !== '')) {
        throw new CommandDecodeError('DestroyTask: taskIds must be a non-empty list of task ids');
      }
      return { dbg, command: { type: 'DestroyTask', vmId: str('vmId'), taskIds: ids as string[] } };
    }
    case 'DebugTrigger': {
      const args = o.args;
      if (typeof o.cmd !== 'string' || !Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
        throw new CommandDecodeError('DebugTrigger: cmd must be a string and args a list of strings');
      }
      return { dbg, command: { type: 'DebugTrigger', cmd: o.cmd, args: args as string[] } };
    }
    case 'SetHostSetting':
      if (typeof o.key !== 'string' || !HOST_SETTING_KEYS.has(o.key)) throw new CommandDecodeError(`SetHostSetting: unknown setting ${JSON.stringify(o.key)}`);
      return { dbg, command: { type: 'SetHostSetting', key: o.key, value: o.value ?? null } };
    case 'HostFacts':
      return { dbg, command: { type: 'HostFacts' } };
    case 'Diagnose':
      return { dbg, command: { type: 'Diagnose' } };
    case 'SetPoolSize':
      if (!Number.isSafeInteger(o.size) || (o.size as number) < 1) throw new CommandDecodeError('SetPoolSize: size must be a whole number of at least 1');
      return { dbg, command: { type: 'SetPoolSize', size: o.size as number } };
    default:
      throw new CommandDecodeError(`unknown command type ${JSON.stringify(o.type)}`);
  }
}

export function encodeReply(reply: CommandReply): Uint8Array {
  return pb.CommandReply.encode({
    ok: reply.ok,
    seq: reply.seq,
    payloadJson: JSON.stringify(reply.ok ? (reply.value ?? null) : reply.error),
  }).finish();
}

export function decodeReply(data: Uint8Array): CommandReply {
  try {
    const r = pb.CommandReply.decode(data);
    const payload: unknown = JSON.parse(r.payloadJson || 'null');
    const seq = Number(r.seq ?? 0);
    return r.ok ? { ok: true, seq, value: payload } : { ok: false, seq, error: payload as ErrorValue };
  } catch (e) {
    return { ok: false, seq: 0, error: ['Internal_error', `undecodable agent reply: ${(e as Error).message}`] };
  }
}

