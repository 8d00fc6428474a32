import { describeError, ErrorT, toErrorValue, withTraceparent, type ErrorValue } from '@xenops/core';
import { JSONRPC_INVALID_PARAMS, JSONRPC_METHOD_NOT_FOUND, JSONRPC_SERVER_ERROR } from '../rpc/jsonrpc.js';
import type { Dispatcher, RpcOutcome } from '../rpc/handler.js';
import type { GatewayContext, MethodSpec } from '../methods/method.js';
import { seedMethods } from '../methods/seed.js';
import { xenopsdMethods } from '../methods/xenopsd.js';
import { ArgumentError, decodeArgs } from './args.js';
import { methodKey, routeCall, splitMethod, type ApiDialect } from './dialect.js';

export interface CallRecord {
  readonly method: string;
  readonly dialect: ApiDialect | 'observer';
  readonly outcome: 'success' | 'failure';
  readonly seconds: number;
}

function indexMethods(methods: readonly MethodSpec[]): Map<string, MethodSpec> {
  const table = new Map<string, MethodSpec>();
  for (const m of methods) {
    const { module, name } = splitMethod(m.name);
    table.set(methodKey(module, name), m);
  }
  return table;
}

const TABLES: Record<ApiDialect, Map<string, MethodSpec>> = {
  xenopsd: indexMethods(xenopsdMethods),
  seed: indexMethods(seedMethods),
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
  const spec = TABLES[dialect].get(methodKey(route.module, route.name));
  if (!spec) return { method: 'unknown', result: failure(['Unimplemented', received], dialect, JSONRPC_METHOD_NOT_FOUND) };
  if (!spec.handler) return { method: spec.name, result: failure(['Unimplemented', spec.name], dialect, JSONRPC_SERVER_ERROR) };
  try {
    const args = decodeArgs(params, spec.args);
    // A trace context from the transport travels in the debug string, as xapi carries it.
    const dbg = traceparent === undefined ? args.dbg : withTraceparent(args.dbg, traceparent);
    const value = await spec.handler({ gateway, dbg, dialect, callerGone }, args.values);
    return { method: spec.name, result: { ok: true, value: spec.result ? spec.result.encode(value, dialect) : null } };
  } catch (e) {
    const code = e instanceof ArgumentError ? JSONRPC_INVALID_PARAMS : JSONRPC_SERVER_ERROR;
    return { method: spec.name, result: failure(toErrorValue(e), dialect, code) };
  }
}

function failure(error: ErrorValue, dialect: ApiDialect, code: number): RpcOutcome {
  return { ok: false, error: ErrorT.encode(error, dialect), code, message: describeError(error) };
}
