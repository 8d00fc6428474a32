import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { resolveIn, type VmEntry } from './resolve.js';

const vm = (id: string, name: string): VmEntry => ({ id, name, power: 'Halted', config: {}, state: {} });
const VMS = [
  vm('5f0c7a3e-0000-4000-8000-000000000001', 'web01'),
  vm('5f0d1111-0000-4000-8000-000000000002', 'web02'),
  vm('7a2b0000-0000-4000-8000-000000000003', 'db'),
  vm('8c000000-0000-4000-8000-000000000004', 'db'),
  vm('9e000000-0000-4000-8000-000000000005', '7a2b'),
];

function err(q: string): CliError {
  try {
    resolveIn(q, VMS);
  } catch (e) {
    return e as CliError;
  }
  throw new Error('expected an error');
}

describe('VM name resolution', () => {
  it('finds by full uuid, name and unique uuid prefix', () => {
    expect(resolveIn('5f0d1111-0000-4000-8000-000000000002', VMS).name).toBe('web02');
    expect(resolveIn('web01', VMS).id).toMatch(/^5f0c/);
    expect(resolveIn('5f0c', VMS).name).toBe('web01');
    expect(resolveIn('8C', VMS).id).toMatch(/^8c/);
  });

  it('prefers an exact name to a uuid prefix', () => {
    expect(resolveIn('7a2b', VMS).id).toMatch(/^9e/);
  });

  it('refuses ambiguous names and prefixes, listing the candidates', () => {
    const e = err('db');
    expect(e.code).toBe(2);
    expect(e.message).toContain("the name 'db' is ambiguous");
    expect(e.message).toContain('7a2b0000-0000-4000-8000-000000000003 (db)');
    expect(e.message).toContain('8c000000-0000-4000-8000-000000000004 (db)');
    const p = err('5f0');
    expect(p.code).toBe(2);
    expect(p.message).toContain("the uuid prefix '5f0' is ambiguous");
  });

  it('reports an unknown VM as not found (exit 3)', () => {
    const e = err('nope');
    expect(e.code).toBe(3);
    expect(e.message).toBe("no VM is called 'nope' (by uuid, uuid prefix or name); 'xenops list' shows the VMs");
  });
});
