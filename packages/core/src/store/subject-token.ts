/**
 * Maps any string (stream keys, host ids, KV keys) to ONE NATS subject token and back.
 *
 * Every UTF-8 byte outside `[A-Za-z0-9_-]` becomes `%XX` (upper-case hex); the empty string
 * becomes `%`. The result never contains `.`, `*`, `>` or whitespace, so it is a single literal
 * token, and the mapping is injective (`%` itself is escaped as `%25`).
 */

const HEX = '0123456789ABCDEF';
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function isSafeByte(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) || // 0-9
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    b === 0x5f || // _
    b === 0x2d // -
  );
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

export function escapeSubjectToken(key: string): string {
  if (key === '') return '%';
  const bytes = encoder.encode(key);
  let out = '';
  for (const b of bytes) {
    if (isSafeByte(b)) out += String.fromCharCode(b);
    else out += '%' + HEX[b >> 4] + HEX[b & 0x0f];
  }
  return out;
}

/** A token of safe characters only: its own escape (most tokens of `vm/<uuid>` keys are). */
const PLAIN_TOKEN = /^[A-Za-z0-9_-]+$/;

/** Inverse of {@link escapeSubjectToken}; throws on a token it could not have produced. */
export function unescapeSubjectToken(token: string): string {
  // Every message read from NATS comes through here: a plain token is returned as it is, without
  // the byte buffer the escaped ones need.
  if (PLAIN_TOKEN.test(token)) return token;
  if (token === '%') return '';
  if (token === '') throw new Error('empty subject token');
  const bytes = new Uint8Array(token.length);
  let n = 0;
  let ascii = true;
  for (let i = 0; i < token.length; ) {
    const c = token.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(token.charCodeAt(i + 1));
      const lo = hexValue(token.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw new Error(`malformed escape in subject token ${JSON.stringify(token)}`);
      const b = (hi << 4) | lo;
      if (b >= 0x80) ascii = false;
      bytes[n++] = b;
      i += 3;
    } else if (isSafeByte(c)) {
      bytes[n++] = c;
      i += 1;
    } else {
      throw new Error(`unexpected character in subject token ${JSON.stringify(token)}`);
    }
  }
  // Every message read from NATS comes through here (`vm/<uuid>` is always escaped): keep the
  // common all-ASCII case off the UTF-8 decoder.
  return ascii ? Buffer.from(bytes.buffer, 0, n).toString('latin1') : strictDecoder.decode(bytes.subarray(0, n));
}
