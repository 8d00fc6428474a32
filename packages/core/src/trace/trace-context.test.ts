import { describe, expect, it } from 'vitest';
import { parseTraceparent, traceparentOfDbg, withTraceparent } from './trace-context.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('W3C traceparent', () => {
  it('accepts valid ones and canonicalises later versions to four fields', () => {
    expect(parseTraceparent(TP)).toBe(TP);
    expect(parseTraceparent(` ${TP} `)).toBe(TP);
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')).toBe('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  });

  it('ignores invalid ones: upper case, zero ids, version ff, extra fields in version 00, garbage', () => {
    for (const bad of [
      TP.toUpperCase(),
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${TP}-extra`,
      '00-4bf92f35-00f067aa0ba902b7-01',
      '',
      'hello',
    ]) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
    expect(parseTraceparent(undefined)).toBeUndefined();
  });

  it('reads the trace context on the last line of a debug string, as xapi writes it', () => {
    expect(traceparentOfDbg(`VM.start by ops\n${TP}`)).toBe(TP);
    expect(traceparentOfDbg('VM.start by ops')).toBeUndefined();
    expect(traceparentOfDbg(`${TP}`)).toBeUndefined();
    expect(traceparentOfDbg('two\nlines')).toBeUndefined();
  });

  it("appends a header's trace context to the debug string unless it already has one", () => {
    expect(withTraceparent('dbg', TP)).toBe(`dbg\n${TP}`);
    expect(withTraceparent('', TP)).toBe(`\n${TP}`);
    const own = `dbg\n00-11111111111111111111111111111111-2222222222222222-00`;
    expect(withTraceparent(own, TP)).toBe(own);
    expect(withTraceparent('dbg', 'not a traceparent')).toBe('dbg');
    expect(withTraceparent('dbg', undefined)).toBe('dbg');
  });
});
