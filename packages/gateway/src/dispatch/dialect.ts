import { seedMethodList, type ApiDialect } from '@xenops/core';
import type { RpcParams } from '../rpc/params.js';

export type { ApiDialect } from '@xenops/core';

/** What §1.1's rules make of a method name: the dialect, or the Observer no-op. */
export type Route = { readonly dialect: ApiDialect; readonly module: string; readonly name: string } | { readonly observer: true };

/** The seed dialect's methods (§5.4, core's seed table), module lower-cased. */
const SEED_METHODS = new Set(
  seedMethodList.map((m) => {
    const { module, name } = splitMethod(m.name);
    return `${module.toLowerCase()}.${name}`;
  }),
);

export function splitMethod(method: string): { module: string; name: string } {
  const dot = method.indexOf('.');
  return dot < 0 ? { module: '', name: method } : { module: method.slice(0, dot), name: method.slice(dot + 1) };
}

/** API.md §1.1: the first matching rule picks the dialect. */
export function routeCall(method: string, params: RpcParams): Route {
  const { module, name } = splitMethod(method);
  if (module === 'Vm' || module === 'Query') return { dialect: 'seed', module, name };
  if (module.toLowerCase() === 'observer') return { observer: true };
  if (params.form === 'named' && SEED_METHODS.has(`${module.toLowerCase()}.${name}`)) {
    let hasDbg = false;
    let hasDebugInfo = false;
    for (const key of Object.keys(params.args)) {
      const k = key.toLowerCase();
      if (k === 'dbg') hasDbg = true;
      else if (k === 'debug_info') hasDebugInfo = true;
    }
    if (hasDbg && !hasDebugInfo) return { dialect: 'seed', module, name };
  }
  return { dialect: 'xenopsd', module, name };
}

/** Table key of a method: module compared ignoring case, name exactly (§1.1). */
export function methodKey(module: string, name: string): string {
  return module === '' ? name : `${module.toLowerCase()}.${name}`;
}
