import type { AnyType, EventLog, StoreMode } from '@xenops/core';
import type { ArgSpec } from '../dispatch/args.js';
import type { ApiDialect } from '../dispatch/dialect.js';
import type { Projection } from '../read-model/projection.js';
import type { EngineClient } from '../service/engine-client.js';

/** What a method handler may use: the read model, the engine (through the bus) and the log. */
export interface GatewayContext {
  readonly hostId: string;
  readonly mode: StoreMode;
  readonly instanceId: string;
  readonly version: string;
  readonly projection: Projection;
  readonly engine: EngineClient;
  readonly log: EventLog;
  /** DEBUG.shutdown: drain and exit after the reply has been sent. */
  readonly requestShutdown: () => void;
}

export interface CallContext {
  readonly gateway: GatewayContext;
  readonly dbg: string;
  readonly dialect: ApiDialect;
  /** A signal aborted when the caller is gone (created on first call; for blocking calls). */
  readonly callerGone?: () => AbortSignal;
}

export interface MethodSpec {
  /** As §5 spells it, e.g. `VM.start`; the Unimplemented payload for methods not built yet. */
  readonly name: string;
  readonly args: readonly ArgSpec[];
  /** Encodes the result; absent for methods that answer `unit`. */
  readonly result?: AnyType;
  /** Absent: the method exists in the contract but is not implemented yet (`Unimplemented`). */
  readonly handler?: (call: CallContext, args: Record<string, unknown>) => Promise<unknown>;
}

export function method(
  name: string,
  args: readonly ArgSpec[],
  result: AnyType | undefined,
  handler?: MethodSpec['handler'],
): MethodSpec {
  return { name, args, ...(result ? { result } : {}), ...(handler ? { handler } : {}) };
}
