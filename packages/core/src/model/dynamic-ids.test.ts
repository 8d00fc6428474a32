import { describe, expect, it } from 'vitest';
import { VISIBLE_VM_FIELDS, vmVisiblyChanged } from './dynamic-ids.js';
import { emptyVm, type VmAggregate } from './vm-aggregate.js';

describe('vmVisiblyChanged', () => {
  const before: VmAggregate = { ...emptyVm('vm1'), owner: 'h1' };

  it('sees a new value of each field VM.stat shows', () => {
    for (const field of VISIBLE_VM_FIELDS) {
      const after = { ...before, [field]: { changed: field } } as unknown as VmAggregate;
      expect(vmVisiblyChanged(before, after), field).toBe(true);
    }
  });

  it('ignores the fields VM.stat does not show, and an unchanged record', () => {
    expect(vmVisiblyChanged(before, before)).toBe(false);
    expect(vmVisiblyChanged(before, { ...before, version: 9, owner: 'h2', queue: [], devices: { ...before.devices } })).toBe(false);
    expect(vmVisiblyChanged(undefined, before)).toBe(true);
  });
});
