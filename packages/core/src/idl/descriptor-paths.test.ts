import { describe, expect, it } from 'vitest';
import { XenopsError } from '../errors.js';
import { dict, list, record, string } from './descriptor.js';

/** Decoding errors quote paths that hold the client's own dict keys: §6.3 messages stay one line. */
describe('type error paths through dicts', () => {
  const features = list(record('Feature', { parameters: dict(string) }));

  function messageOf(wire: unknown): string {
    try {
      features.decode(wire as never, 'features');
    } catch (e) {
      expect(e).toBeInstanceOf(XenopsError);
      return (e as XenopsError).value[1] as string;
    }
    throw new Error('decode accepted a bad value');
  }

  it('keeps plain keys readable', () => {
    expect(messageOf([{ parameters: { mode: true } }])).toBe('Type error at features[0].parameters.mode: expected string, got true');
  });

  it('escapes control characters and bounds long keys', () => {
    const m = messageOf([{ parameters: { '\r\n': true } }]);
    expect(m).toBe('Type error at features[0].parameters.\\u000D\\u000A: expected string, got true');
    const long = messageOf([{ parameters: { ['k'.repeat(10_000)]: 1 } }]);
    expect(long).toMatch(/^Type error at features\[0\]\.parameters\.k+\.\.\.: expected string, got 1$/);
    expect(long.length).toBeLessThan(200);
  });
});
