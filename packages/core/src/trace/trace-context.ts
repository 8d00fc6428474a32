/**
 * W3C Trace Context (`traceparent`) as xenops carries it. xapi's convention is kept: a call's
 * trace context travels in its debug string, after a newline (`"<dbg>\n<traceparent>"`), so
 * it lands in every event's audit `dbg` and in everything derived from it (task records, change
 * records, `xenops log`) with no second channel to keep in step. A `traceparent` HTTP header or
 * NATS message header is folded into the debug string the same way; commands to agents also carry
 * it as a NATS header, for tools that read headers.
 */

/** The header's name (lower case, as W3C and NATS use it). */
export const TRACEPARENT_HEADER = 'traceparent';

/** `version-traceid-parentid-flags`: lower-case hex, version ff forbidden (W3C Trace Context §3.2). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ALL_ZERO = /^0+$/;

/**
 * The canonical `traceparent` in `text`, or undefined when it is not a valid one (an invalid
 * header is ignored, as W3C asks). Version 00 must have exactly four fields; a later version may
 * have more, of which the first four are kept.
 */
export function parseTraceparent(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const m = TRACEPARENT.exec(text.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === 'ff' || ALL_ZERO.test(traceId!) || ALL_ZERO.test(parentId!)) return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  return `${version}-${traceId}-${parentId}-${flags}`;
}

/** The trace context a debug string carries on its last line (xapi's convention), if any. */
export function traceparentOfDbg(dbg: string): string | undefined {
  const nl = dbg.lastIndexOf('\n');
  return nl < 0 ? undefined : parseTraceparent(dbg.slice(nl + 1));
}

/**
 * `dbg` carrying `traceparent`: unchanged when it already carries one (the caller's own wins) or
 * when `traceparent` is not valid, else with it appended after a newline.
 */
export function withTraceparent(dbg: string, traceparent: string | undefined): string {
  const tp = parseTraceparent(traceparent);
  if (tp === undefined || traceparentOfDbg(dbg) !== undefined) return dbg;
  return `${dbg}\n${tp}`;
}
