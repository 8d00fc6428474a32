import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '@xenops/core';
import { eventKindSubjects, eventStreamDescription, eventSubjectOf, layoutOfStream, streamKeyOfSubject, type EventSubjectLayout } from './event-subjects.js';

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

// Keys as the log writes them, and awkward ones (a stream key is any non-empty string).
const KEYS = ['vm/5f0c7a3e-2b1d-4c55-9a10-0123456789ab', 'task/12', 'task/unrouted', 'host/host-a', 'updates/barriers', 'updates/refresh', 'x', '', '/', 'vm/', '/x', 'vm/a/b', 'vm/a.b c', 'é/ü', '%', 'vm/%2F'];

describe('event subjects', () => {
  it('layout 2 puts the kind in its own token; layout 1 keeps the whole key one token', () => {
    expect(eventSubjectOf('xenops', 'vm/abc', 2)).toBe('xenops.ev.vm.abc');
    expect(eventSubjectOf('xenops', 'updates/barriers', 2)).toBe('xenops.ev.updates.barriers');
    expect(eventSubjectOf('xenops', 'host/h.1', 2)).toBe('xenops.ev.host.h%2E1');
    expect(eventSubjectOf('xenops', 'vm/a/b', 2)).toBe('xenops.ev.vm.a%2Fb');
    expect(eventSubjectOf('xenops', 'plain', 2)).toBe('xenops.ev.plain');
    expect(eventSubjectOf('xenops', 'vm/abc', 1)).toBe('xenops.ev.vm%2Fabc');
    expect(eventSubjectOf('a.b', 'vm/abc', 2)).toBe('a.b.ev.vm.abc');
  });

  it.each([1, 2] as const)('layout %i: every key reads back from its subject', (layout) => {
    for (const key of KEYS) expect(streamKeyOfSubject('xenops', eventSubjectOf('xenops', key, layout), layout)).toBe(key);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('p', 'a.b', 'x_y-z'), (key, prefix) => {
        expect(streamKeyOfSubject(prefix, eventSubjectOf(prefix, key, layout), layout)).toBe(key);
      }),
    );
  });

  it('different keys never share a subject (within one layout)', () => {
    for (const layout of [1, 2] as const) {
      const seen = new Map<string, string>();
      for (const key of KEYS) {
        const s = eventSubjectOf('p', key, layout);
        expect(seen.get(s) ?? key).toBe(key);
        seen.set(s, key);
      }
    }
  });

  it('`<prefix>.ev.vm.>` matches exactly the VM streams in layout 2, and nothing in layout 1', () => {
    const vm = eventKindSubjects('p', 'vm');
    expect(vm).toBe('p.ev.vm.>');
    for (const key of KEYS) {
      expect(matches(vm, eventSubjectOf('p', key, 2)), key).toBe(key.startsWith('vm/'));
      expect(matches(vm, eventSubjectOf('p', key, 1)), key).toBe(false);
    }
  });

  it('a layout-2 stream refuses the one-token spelling of a key with "/" (no alias of a VM stream)', () => {
    expect(() => streamKeyOfSubject('p', 'p.ev.vm%2Fabc', 2)).toThrow(/layout-2 stream never holds/);
    expect(streamKeyOfSubject('p', 'p.ev.vm%2Fabc', 1)).toBe('vm/abc');
    expect(() => streamKeyOfSubject('p', 'p.ev.vm.abc', 1)).toThrow(/too many tokens/);
    expect(() => streamKeyOfSubject('p', 'p.ev.vm.a.b', 2)).toThrow(/too many tokens/);
    expect(() => streamKeyOfSubject('p', 'q.ev.vm.abc', 2)).toThrow(/not an event subject of prefix p/);
    expect(() => streamKeyOfSubject('p', 'p.cmd.vm.abc', 2)).toThrow(/not an event subject/);
    expect(() => streamKeyOfSubject('p', 'p.ev.vm.a%2', 2)).toThrow(/malformed escape/);
  });

  it("the stream's description records its layout; no marker means layout 1; an unknown one is refused", () => {
    for (const layout of [1, 2] as EventSubjectLayout[]) expect(layoutOfStream('S', eventStreamDescription('p', layout))).toBe(layout);
    expect(eventStreamDescription('p')).toBe('xenops event log, subject layout 2 (p.ev.<kind>.<id>)');
    expect(layoutOfStream('S', undefined)).toBe(1);
    expect(layoutOfStream('S', '')).toBe(1);
    expect(layoutOfStream('S', 'hand-tuned')).toBe(1);
    const err = (() => {
      try {
        layoutOfStream('S', 'xenops event log, subject layout 3 (p.ev.<a>.<b>.<c>)');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/the stream S uses event subject layout 3, which this release does not know/);
  });
});
