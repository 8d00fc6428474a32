import { describe, expect, it } from 'vitest';
import type { RpcParams } from '../rpc/params.js';
import { METHOD_COUNTS } from './dispatcher.js';
import { routeCall } from './dialect.js';

const named = (args: Record<string, unknown>): RpcParams => ({ form: 'named', args: args as never });

describe('dialect choice (API.md §1.1)', () => {
  it('treats the modules Vm and Query as seed, case-sensitively', () => {
    expect(routeCall('Vm.start', named({ debug_info: 'x' }))).toMatchObject({ dialect: 'seed' });
    expect(routeCall('Query.query', { form: 'none' })).toMatchObject({ dialect: 'seed' });
    expect(routeCall('VM.start', named({ debug_info: 'x' }))).toMatchObject({ dialect: 'xenopsd' });
    expect(routeCall('query', { form: 'none' })).toMatchObject({ dialect: 'xenopsd' });
  });

  it('routes Observer calls to the no-op in any case', () => {
    expect(routeCall('Observer.create', { form: 'none' })).toEqual({ observer: true });
    expect(routeCall('OBSERVER.set_enabled', { form: 'malformed' })).toEqual({ observer: true });
  });

  it('uses the dbg key to pick seed only for methods the seed has', () => {
    expect(routeCall('VM.start', named({ dbg: 'x', id: 'a' }))).toMatchObject({ dialect: 'seed' });
    expect(routeCall('vm.start', named({ DBG: 'x' }))).toMatchObject({ dialect: 'seed' });
    expect(routeCall('TASK.stat', named({ dbg: 'x' }))).toMatchObject({ dialect: 'seed' });
    expect(routeCall('VM.start', named({ dbg: 'x', debug_info: 'y' }))).toMatchObject({ dialect: 'xenopsd' });
    expect(routeCall('VM.exists', named({ dbg: 'x' }))).toMatchObject({ dialect: 'xenopsd' });
    expect(routeCall('VBD.add', named({ dbg: 'x' }))).toMatchObject({ dialect: 'xenopsd' });
    expect(routeCall('Task.list', named({ dbg: 'x' }))).toMatchObject({ dialect: 'xenopsd' });
    expect(routeCall('VM.start', { form: 'positional', dbg: 'x', args: [] })).toMatchObject({ dialect: 'xenopsd' });
  });

  it('declares exactly the contract\u2019s methods: 90 xenopsd plus HOST.list and HOST.evacuate (§9.7), 25 seed (§1.2)', () => {
    expect(METHOD_COUNTS).toEqual({ xenopsd: 92, seed: 25 });
  });
});
