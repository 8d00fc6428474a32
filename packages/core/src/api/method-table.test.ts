import { describe, expect, expectTypeOf, it } from 'vitest';
import type { VmConfig, VmState } from '../index.js';
import type { ArgsOf, CallArgsOf, ResultOf } from './method-declaration.js';
import { seedMethodList, seedMethods } from './seed-methods.js';
import { xenopsdMethodList, xenopsdMethods, type XenopsdMethods } from './xenopsd-methods.js';

describe('the method table (API.md §5)', () => {
  it('declares the 90 xenopsd methods plus HOST.list and HOST.evacuate (§9.7) and 25 seed methods once each, in their dialect', () => {
    expect(Object.keys(xenopsdMethods)).toHaveLength(92);
    expect(xenopsdMethodList).toHaveLength(92);
    expect(xenopsdMethods['HOST.list'].args).toEqual([]);
    expect(xenopsdMethods['HOST.evacuate'].args.map((a) => a.key)).toEqual(['host']);
    expect(Object.keys(seedMethods)).toHaveLength(25);
    expect(seedMethodList).toHaveLength(25);
    for (const m of xenopsdMethodList) expect(m.dialect).toBe('xenopsd');
    for (const m of seedMethodList) expect(m.dialect).toBe('seed');
  });

  it('gives every task method a task id (string) result, and as_of and the placement host only in the named form', () => {
    for (const m of [...xenopsdMethodList, ...seedMethodList]) {
      if (m.kind === 'task') expect(m.result.kind, m.name).toBe('string');
      for (const a of m.args) expect(a.namedOnly === true, `${m.name}.${a.key}`).toBe(a.key === 'as_of' || (a.key === 'host' && /^VM\.(start|resume)$/.test(m.name)));
      expect(new Set(m.args.map((a) => a.key)).size, m.name).toBe(m.args.length);
    }
    expect(xenopsdMethods['VM.remove'].kind).toBe('queued');
    expect(xenopsdMethods['VM.start'].args.map((a) => a.key)).toEqual(['id', 'paused', 'host']);
    expect(xenopsdMethods['VM.resume'].args.map((a) => a.key)).toEqual(['id', 'suspend_vdi', 'host']);
  });

  it('derives the TypeScript types of arguments and results from the IDL', () => {
    expectTypeOf<ArgsOf<XenopsdMethods['VM.start']>>().toEqualTypeOf<{ id: string; paused: boolean; host: string | undefined }>();
    const both = (r: ResultOf<XenopsdMethods['VM.stat']>): [VmConfig, VmState] => r;
    const back = (r: [VmConfig, VmState]): ResultOf<XenopsdMethods['VM.stat']> => r;
    expect([both, back]).toHaveLength(2);
    expectTypeOf<ResultOf<XenopsdMethods['Task.cancel']>>().toEqualTypeOf<null>();
    // A caller may leave out options and units (§2.5), not the rest.
    expectTypeOf<{ id: string }>().toMatchTypeOf<CallArgsOf<XenopsdMethods['VM.shutdown']>>();
    expectTypeOf<{}>().toMatchTypeOf<CallArgsOf<XenopsdMethods['VM.list']>>();
    expectTypeOf<{}>().not.toMatchTypeOf<CallArgsOf<XenopsdMethods['VM.start']>>();
  });
});
