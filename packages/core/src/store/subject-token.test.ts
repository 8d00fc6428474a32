import { describe, expect, it } from 'vitest';
import { escapeSubjectToken, unescapeSubjectToken } from './subject-token.js';

describe('subject token escaping', () => {
  it('maps every string to one token and back', () => {
    const cases: [string, string][] = [
      ['', '%'],
      ['abc-XYZ_09', 'abc-XYZ_09'],
      ['a.b', 'a%2Eb'],
      ['a b', 'a%20b'],
      ['%', '%25'],
      ['vm/1', 'vm%2F1'],
      ['é', '%C3%A9'],
      ['>', '%3E'],
      ['*', '%2A'],
    ];
    for (const [raw, token] of cases) {
      expect(escapeSubjectToken(raw)).toBe(token);
      expect(unescapeSubjectToken(token)).toBe(raw);
    }
    for (const k of ['🚀 x.y', '日本語', '\u0000\n\t', 'a%2Eb', '%%']) {
      const t = escapeSubjectToken(k);
      expect(t).toMatch(/^[A-Za-z0-9_%-]+$/);
      expect(unescapeSubjectToken(t)).toBe(k);
    }
    expect(() => unescapeSubjectToken('a.b')).toThrow();
    expect(() => unescapeSubjectToken('%2')).toThrow();
    expect(() => unescapeSubjectToken('%e9')).toThrow();
    expect(() => unescapeSubjectToken('%FF')).toThrow(); // not UTF-8
  });
});
