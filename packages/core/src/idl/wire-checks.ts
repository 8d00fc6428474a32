/**
 * The checks every value from outside passes before anything decodes it (API.md §6.3): nesting
 * stays within {@link MAX_WIRE_NESTING} levels, and every string (keys included) is well-formed
 * Unicode. A lone UTF-16 surrogate (JSON `"\ud800"`) cannot be stored: protobuf writes it as
 * bytes that are not UTF-8, and the log could then never be read back.
 */
import type { WireIn } from './wire.js';

/**
 * Deepest nesting of arrays and objects/structs a request may have. A `Vm.t` is about 8 levels
 * deep (`vm.ty.HVM.firmware.Uefi…`) and a JSON-RPC envelope and batch add 3: 64 leaves room for
 * anything legitimate while every recursive decoder stays far from the stack limit.
 */
export const MAX_WIRE_NESTING = 64;

/** A value nests deeper than the limit. The message is the §6.3-style text of the reply. */
export class NestingLimitError extends Error {
  override readonly name = 'NestingLimitError';
  readonly code = 'NESTING_LIMIT';
  constructor(
    readonly limit: number,
    options?: { cause?: unknown },
  ) {
    super(`request nesting exceeds ${limit} levels`, options);
  }
}

/**
 * A string (value or key) that is not well-formed Unicode: it holds a lone surrogate. This is the
 * "wrong shape or type" row of §6.3: the value at `path` is not a string the API can hold.
 */
export class IllFormedStringError extends Error {
  override readonly name = 'IllFormedStringError';
  readonly code = 'ILL_FORMED_STRING';
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`Type error at ${path || '<root>'}: expected a well-formed Unicode string`, options);
  }
}

/**
 * Whether JSON text nests arrays/objects more than `max` deep. A linear scan that skips string
 * contents, run before `JSON.parse`: V8 parses deep nesting without blowing the stack, but slowly
 * (seconds for a 16 MiB body of `[`), and every recursive step after it would overflow.
 * Malformed text is not judged here; `JSON.parse` reports it.
 */
export function jsonNestingExceeds(text: string, max: number = MAX_WIRE_NESTING): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Jump to the closing quote: one not preceded by an odd run of backslashes.
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return false;
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j++;
      }
      i = j;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** A JSON escape of a surrogate code unit (`\ud800`–`\udfff`): the only way JSON text spells one. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Whether the value parsed from `text` may hold an ill-formed string: only if the text spells a
 * surrogate as an escape, or holds one itself. Lets the common case skip the walk.
 */
export function jsonMayHoldIllFormedString(text: string): boolean {
  return SURROGATE_ESCAPE.test(text) || !text.isWellFormed();
}

// eslint-disable-next-line no-control-regex
const NOT_PRINTABLE = /[\x00-\x1f\x7f\u2028\u2029]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text from outside (or a parser's message quoting it) made fit for an error message: one line,
 * well-formed, at most `max` characters. Controls, line separators and lone surrogates become
 * `\uXXXX`.
 */
export function singleLine(text: string, max = 200): string {
  const escaped = text.slice(0, max).replace(NOT_PRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`);
  if (escaped.length <= max && text.length <= max) return escaped;
  // Never cut a surrogate pair in half.
  return `${escaped.slice(0, /[\uD800-\uDBFF]/.test(escaped[max - 4]!) ? max - 4 : max - 3)}...`;
}

/** A key as a path segment: bounded, single-line and well-formed whatever it holds. */
function keySegment(key: string): string {
  return singleLine(key, 64);
}

/** `path.key` or `path[i]`, in the style of the IDL's error paths (`vm.ty.HVM.video_mib`). */
export function wirePath(path: string, segment: string | number): string {
  if (typeof segment === 'number') return `${path}[${segment}]`;
  const s = keySegment(segment);
  return path ? `${path}.${s}` : s;
}

/**
 * The path of the first string (value or key) in `value` that is not well-formed Unicode, or
 * undefined when there is none. Iterative: safe on any depth.
 */
export function findIllFormedString(value: unknown, path = ''): string | undefined {
  const stack: Array<[unknown, string]> = [[value, path]];
  while (stack.length > 0) {
    const [v, p] = stack.pop()!;
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return p;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], wirePath(p, i)]);
    } else if (v instanceof Map) {
      const entries = [...(v as Map<unknown, unknown>)].map(([k, x]): [string, unknown] => [String(k), x]);
      const bad = pushMembers(stack, p, entries);
      if (bad !== undefined) return bad;
    } else if (typeof v === 'object' && v !== null) {
      const bad = pushMembers(
        stack,
        p,
        Object.keys(v).map((k): [string, unknown] => [k, (v as Record<string, unknown>)[k]]),
      );
      if (bad !== undefined) return bad;
    }
  }
  return undefined;
}

/** Checks the keys of a struct (in order) and queues its values; returns the path of a bad key. */
function pushMembers(stack: Array<[unknown, string]>, path: string, members: Array<[string, unknown]>): string | undefined {
  for (const [k] of members) if (!k.isWellFormed()) return wirePath(path, k);
  for (let i = members.length - 1; i >= 0; i--) stack.push([members[i]![1], wirePath(path, members[i]![0])]);
  return undefined;
}

/** Throws {@link IllFormedStringError} when `value` holds a string that is not well-formed. */
export function assertWellFormedStrings(value: unknown, path = ''): void {
  const bad = findIllFormedString(value, path);
  if (bad !== undefined) throw new IllFormedStringError(bad);
}

/**
 * Parses JSON text that came from outside (a request, a bus message, a document inside an
 * argument): nesting bounded first, then `JSON.parse`, then every string checked. Throws
 * {@link NestingLimitError}, `SyntaxError` or {@link IllFormedStringError} (paths start at `path`).
 */
export function parseUntrustedJson(text: string, path = '', maxNesting: number = MAX_WIRE_NESTING): WireIn {
  if (jsonNestingExceeds(text, maxNesting)) throw new NestingLimitError(maxNesting);
  const value = JSON.parse(text) as WireIn;
  if (jsonMayHoldIllFormedString(text)) assertWellFormedStrings(value, path);
  return value;
}
