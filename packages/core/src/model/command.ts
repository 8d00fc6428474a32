import { xenops } from '../../generated/xenops.js';
import type { ErrorValue } from '../errors.js';
import { VmT, type Type, type VmConfig } from '../idl/index.js';
import { DEVICE_TYPES, isDeviceKind, type DeviceConfig, type DeviceKind } from './devices.js';
import { wireToJson } from '../idl/wire.js';
import { IllFormedStringError, NestingLimitError, parseUntrustedJson, singleLine } from '../idl/wire-checks.js';
import type { GuestAction, GuestMode } from '../events/event.js';
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
  | { readonly type: 'SubmitOperation'; readonly vmId: string; readonly operation: Operation }
  | { readonly type: 'CancelTask'; readonly vmId: string; readonly taskId: string }
  /** Task.destroy_on_finish of a task that has not ended yet. */
  | { readonly type: 'DestroyTaskOnFinish'; readonly vmId: string; readonly taskId: string }
  /** DEBUG.trigger reboot/halt/crash: the guest asks for an action by itself (§7.5, §8.3). */
  | { readonly type: 'RequestGuestAction'; readonly vmId: string; readonly action: GuestAction }
  /** DEBUG.trigger no-ack: how the simulated guest answers shutdown requests (§8.2). */
  | { readonly type: 'SetGuestMode'; readonly vmId: string; readonly mode: GuestMode }
  /** HOST.set_worker_pool_size: addressed to the host, not to a VM. */
  | { readonly type: 'SetPoolSize'; readonly size: number }
  /** DEBUG.trigger set-cancel-trigger: the next task created with this dbg cancels itself at `point`. */
  | { readonly type: 'SetCancelTrigger'; readonly dbg: string; readonly point: number }
  /** get_diagnostics: the agent's worker pool and queues. */
  | { readonly type: 'Diagnose' };

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
        return { dbg, command: { type: 'SubmitOperation', vmId: str('vmId'), operation: decodeOperation(o.operation) } };
      } catch (e) {
        if (e instanceof CommandDecodeError) throw e;
        throw new CommandDecodeError(`SubmitOperation: ${(e as Error).message}`);
      }
    case 'CancelTask':
    case 'DestroyTaskOnFinish':
      return { dbg, command: { type: o.type, vmId: str('vmId'), taskId: str('taskId') } };
    case 'RequestGuestAction': {
      const action = str('action');
      if (!['reboot', 'halt', 'crash', 'suspend', 'soft_reset'].includes(action)) throw new CommandDecodeError(`unknown guest action ${action}`);
      return { dbg, command: { type: 'RequestGuestAction', vmId: str('vmId'), action: action as GuestAction } };
    }
    case 'SetGuestMode': {
      const mode = str('mode');
      if (!['normal', 'ignore', 'hang'].includes(mode)) throw new CommandDecodeError(`unknown guest mode ${mode}`);
      return { dbg, command: { type: 'SetGuestMode', vmId: str('vmId'), mode: mode as GuestMode } };
    }
    case 'SetCancelTrigger':
      if (typeof o.dbg !== 'string' || !Number.isSafeInteger(o.point) || (o.point as number) < 1) throw new CommandDecodeError('SetCancelTrigger: dbg and a point of at least 1 are required');
      return { dbg, command: { type: 'SetCancelTrigger', dbg: o.dbg, point: o.point as number } };
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

