import {
  describeError,
  ErrorT,
  seedMethodList,
  toErrorValue,
  withTraceparent,
  xenopsdMethodList,
  type AnyMethodDeclaration,
  type ArgsOf,
  type ErrorValue,
} from '@xenops/core';
import { JSONRPC_INVALID_PARAMS, JSONRPC_METHOD_NOT_FOUND, JSONRPC_SERVER_ERROR } from '../rpc/jsonrpc.js';
import type { Dispatcher, RpcOutcome } from '../rpc/handler.js';
import { UNIMPLEMENTED, type CallContext, type GatewayContext, type Handler } from '../methods/method.js';
import { seedHandlers } from '../methods/seed.js';
import { xenopsdHandlers } from '../methods/xenopsd.js';
import { ArgumentError, decodeArgs } from './args.js';
import { methodKey, routeCall, splitMethod, type ApiDialect } from './dialect.js';

export interface CallRecord {
  readonly method: string;
  readonly dialect: ApiDialect | 'observer';
  readonly outcome: 'success' | 'failure';
  readonly seconds: number;
}

/** A method of core's table with the gateway's handler (absent: Unimplemented). */
interface Entry {
  readonly declaration: AnyMethodDeclaration;
  readonly handler?: Handler<AnyMethodDeclaration>;
}

function indexMethods(
  declarations: readonly AnyMethodDeclaration[],
  handlers: { readonly [name: string]: ((call: CallContext, args: never) => Promise<unknown>) | typeof UNIMPLEMENTED },
): Map<string, Entry> {
  const table = new Map<string, Entry>();
  for (const declaration of declarations) {
    const { module, name } = splitMethod(declaration.name);
    const handler = handlers[declaration.name];
    // Each handler was checked against its own declaration (Handlers<T>): here they are one list.
    table.set(methodKey(module, name), handler === UNIMPLEMENTED || !handler ? { declaration } : { declaration, handler: handler as Handler<AnyMethodDeclaration> });
  }
  return table;
}

const TABLES: Record<ApiDialect, Map<string, Entry>> = {
  xenopsd: indexMethods(xenopsdMethodList, xenopsdHandlers),
  seed: indexMethods(seedMethodList, seedHandlers),
};

/** The contract's method counts (§1.2), checked by a unit test. */
export const METHOD_COUNTS = { xenopsd: TABLES.xenopsd.size, seed: TABLES.seed.size };

/**
 * Turns a decoded RPC request into a method call: dialect (§1.1), lookup, argument decoding
 * (§2.5), execution and result encoding in the dialect's shapes. Never throws.
 */
export function createDispatcher(gateway: GatewayContext, onCall?: (record: CallRecord) => void): Dispatcher {
  return async (req) => {
    const started = process.hrtime.bigint();
    const route = routeCall(req.method, req.params);
    const dialect = 'observer' in route ? 'observer' : route.dialect;
    const outcome = await dispatch(gateway, req.method, route, req.params, req.callerGone, req.traceparent);
    onCall?.({
      method: outcome.method,
      dialect,
      outcome: outcome.result.ok ? 'success' : 'failure',
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    });
    return outcome.result;
  };
}

async function dispatch(
  gateway: GatewayContext,
  received: string,
  route: ReturnType<typeof routeCall>,
  params: Parameters<Dispatcher>[0]['params'],
  callerGone: (() => AbortSignal) | undefined,
  traceparent: string | undefined,
): Promise<{ method: string; result: RpcOutcome }> {
  // Observer.*: tracing configuration, accepted and ignored (§5.3).
  if ('observer' in route) return { method: 'Observer', result: { ok: true, value: null } };
  const { dialect } = route;
  const entry = TABLES[dialect].get(methodKey(route.module, route.name));
  if (!entry) return { method: 'unknown', result: failure(['Unimplemented', received], dialect, JSONRPC_METHOD_NOT_FOUND) };
  const { declaration, handler } = entry;
  if (!handler) return { method: declaration.name, result: failure(['Unimplemented', declaration.name], dialect, JSONRPC_SERVER_ERROR) };
  try {
    const args = decodeArgs(params, declaration.args);
    // Decoded by this declaration's own argument types: the values are its ArgsOf.
    const values = args.values as ArgsOf<AnyMethodDeclaration>;
    // A trace context from the transport travels in the debug string, as xapi carries it.
    const dbg = traceparent === undefined ? args.dbg : withTraceparent(args.dbg, traceparent);
    const value = await handler({ gateway, dbg, dialect, callerGone, wireArgument: args.wire }, values);
    return { method: declaration.name, result: { ok: true, value: declaration.result.encode(value, dialect) } };
  } catch (e) {
    const code = e instanceof ArgumentError ? JSONRPC_INVALID_PARAMS : JSONRPC_SERVER_ERROR;
    return { method: declaration.name, result: failure(toErrorValue(e), dialect, code) };
  }
}

function failure(error: ErrorValue, dialect: ApiDialect, code: number): RpcOutcome {
  return { ok: false, error: ErrorT.encode(error, dialect), code, message: describeError(error) };
}
