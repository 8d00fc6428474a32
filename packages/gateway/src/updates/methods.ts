/** The `UPDATES.*` methods of the xenopsd dialect (API.md §5.2, §7.7). */
import { int, option, string, unit, UpdatesResultT, VmIdT } from '@xenops/core';
import { method, type MethodSpec } from '../methods/method.js';
import { updatesOf } from './updates-service.js';

export const updatesMethods: readonly MethodSpec[] = [
  method(
    'UPDATES.get',
    [
      { key: 'last_id', type: option(int) },
      { key: 'timeout', type: option(int) },
    ],
    UpdatesResultT,
    ({ gateway, callerGone }, a) => updatesOf(gateway.projection).get(a.last_id as number | undefined, a.timeout as number | undefined, callerGone?.()),
  ),
  method('UPDATES.last_id', [], int, ({ gateway }) => updatesOf(gateway.projection).lastId()),
  method(
    'UPDATES.inject_barrier',
    [
      { key: 'vm_id', type: string },
      { key: 'id', type: int },
    ],
    unit,
    async ({ gateway, dbg }, a) => {
      await updatesOf(gateway.projection).injectBarrier(dbg, a.vm_id as string, a.id as number);
      return null;
    },
  ),
  method('UPDATES.remove_barrier', [{ key: 'id', type: int }], unit, async ({ gateway, dbg }, a) => {
    await updatesOf(gateway.projection).removeBarrier(dbg, a.id as number);
    return null;
  }),
  method('UPDATES.refresh_vm', [{ key: 'id', type: VmIdT }], unit, async ({ gateway, dbg }, a) => {
    await updatesOf(gateway.projection).refreshVm(dbg, a.id as string);
    return null;
  }),
];
