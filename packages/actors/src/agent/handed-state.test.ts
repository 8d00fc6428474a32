/** The state a migration's wake-up carries: the VM record round-trips; anything else is ignored. */
import { serialize } from 'node:v8';
import { emptyVm, type VmAggregate } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import { decodeHandedState, encodeHandedState } from './handed-state.js';

const handed: VmAggregate = {
  ...emptyVm('v'),
  version: 42,
  owner: 'h2',
  running: { taskId: '40', operation: { kind: 'VM.pause' }, dbg: 'd', host: 'h2', migration: { wasPaused: false, handedOver: true, progress: 0.5 } },
};

describe('handed state', () => {
  it('round-trips a VM passed to this host, Maps included', () => {
    const back = decodeHandedState(encodeHandedState(handed), 'v', '40', 'h2');
    expect(back).toEqual(handed);
    expect(back!.devices.vbd).toBeInstanceOf(Map);
  });

  it('ignores garbage, another VM, another task, another host, a task not handed over, a record without its tables', () => {
    const b64 = (v: unknown) => serialize(v).toString('base64');
    expect(decodeHandedState('not base64 at all!', 'v', '40', 'h2')).toBeUndefined();
    expect(decodeHandedState(Buffer.from([0xff, 0x0f, 0x22]).toString('base64'), 'v', '40', 'h2')).toBeUndefined();
    expect(decodeHandedState(b64('a string'), 'v', '40', 'h2')).toBeUndefined();
    expect(decodeHandedState(encodeHandedState(handed), 'w', '40', 'h2')).toBeUndefined();
    expect(decodeHandedState(encodeHandedState(handed), 'v', '41', 'h2')).toBeUndefined();
    expect(decodeHandedState(encodeHandedState(handed), 'v', '40', 'h3')).toBeUndefined();
    expect(decodeHandedState(encodeHandedState({ ...handed, running: { ...handed.running!, migration: { wasPaused: false, handedOver: false, progress: 1 } } }), 'v', '40', 'h2')).toBeUndefined();
    expect(decodeHandedState(b64({ ...handed, devices: { vbd: [] } }), 'v', '40', 'h2')).toBeUndefined();
    expect(decodeHandedState(b64({ ...handed, version: 'x' }), 'v', '40', 'h2')).toBeUndefined();
  });
});
