import { describe, expect, it } from 'vitest';
import { XenopsError } from '../errors.js';
import { dict, field, int, option, record, string } from './descriptor.js';

/**
 * A record decodes a struct whose keys are all its fields as spelled by copying it; every other
 * struct key by key. The two must give the same record whatever the struct looks like.
 */
describe('record decode', () => {
  const Disk = record('Disk', {
    id: string,
    size: field(int, { default: 1 }),
    label: option(string),
    toString: option(string),
    extra: field(dict(string), { default: [] }),
  });

  it('gives the same record for exact, mixed-case and Map structs', () => {
    const exact = Disk.decode({ label: 'root', id: 'd1', extra: { a: 'b' } }, 'disk');
    expect(exact).toEqual({ id: 'd1', size: 1, label: 'root', extra: [['a', 'b']] });
    expect(Disk.decode({ ID: 'd1', Label: 'root', extra: { a: 'b' } }, 'disk')).toEqual(exact);
    expect(Disk.decode(new Map<string, unknown>([['id', 'd1'], ['label', 'root'], ['extra', new Map([['a', 'b']])]]), 'disk')).toEqual(exact);
  });

  it('leaves out an option sent as null or [] (no key holding undefined)', () => {
    for (const none of [null, []]) {
      const d = Disk.decode({ id: 'd1', label: none }, 'disk');
      expect(d).toEqual({ id: 'd1', size: 1, extra: [] });
      expect('label' in d).toBe(false);
    }
  });

  it('takes a field named like an Object.prototype member only when it is sent', () => {
    expect(Object.hasOwn(Disk.decode({ id: 'd1' }, 'disk'), 'toString')).toBe(false);
    expect(Disk.decode({ id: 'd1', toString: 'x' }, 'disk').toString).toBe('x');
  });

  it('does not keep a key the wire gave as undefined, nor share the input', () => {
    const wire: Record<string, unknown> = { id: 'd1', size: undefined };
    const d = Disk.decode(wire, 'disk');
    expect(d).toEqual({ id: 'd1', size: 1, extra: [] });
    (d as { id: string }).id = 'changed';
    expect(wire.id).toBe('d1');
  });

  it('reports a missing field and a bad value with their paths, as before', () => {
    const messageOf = (w: unknown): string => {
      try {
        Disk.decode(w, 'disk');
      } catch (e) {
        expect(e).toBeInstanceOf(XenopsError);
        return (e as XenopsError).value[1] as string;
      }
      throw new Error('decode accepted a bad value');
    };
    expect(messageOf({ size: 2 })).toBe("No value found for key 'id' in Disk");
    expect(messageOf({ id: 'd1', size: 'big' })).toMatch(/^Type error at disk\.size: expected int/);
    expect(messageOf({ id: 'd1', extra: { k: 1 } })).toBe('Type error at disk.extra.k: expected string, got 1');
  });
});
