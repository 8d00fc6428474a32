/**
 * xl-style VM configuration files (xl.cfg(5)): `key = value` lines where a value is a quoted
 * string, a number or a `[list]` of them (lists may span lines); `#` starts a comment; `+=`
 * appends. This module only parses the syntax; `xl-translate.ts` maps the keys to the API's types.
 * Every error names the file and the line.
 */

export type XlValue =
  | { readonly kind: 'string'; readonly value: string; readonly line: number }
  | { readonly kind: 'number'; readonly value: number; readonly text: string; readonly line: number }
  | { readonly kind: 'list'; readonly items: readonly XlValue[]; readonly line: number };

export interface XlSetting {
  readonly key: string;
  readonly value: XlValue;
  readonly line: number;
}

export class XlConfigError extends Error {
  override readonly name = 'XlConfigError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}

type Token =
  | { t: 'ident'; v: string; line: number }
  | { t: 'string'; v: string; line: number }
  | { t: 'number'; v: number; text: string; line: number }
  | { t: 'punct'; v: '=' | '+=' | '[' | ']' | ',' | ';'; line: number }
  | { t: 'newline'; line: number }
  | { t: 'eof'; line: number };

function describeToken(tok: Token): string {
  switch (tok.t) {
    case 'ident':
      return `'${tok.v}'`;
    case 'string':
      return `the string "${tok.v}"`;
    case 'number':
      return `the number ${tok.text}`;
    case 'punct':
      return `'${tok.v}'`;
    case 'newline':
      return 'the end of the line';
    case 'eof':
      return 'the end of the file';
  }
}

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      out.push({ t: 'newline', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      const start = line;
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length || text[i] === '\n') throw new XlConfigError(file, start, `unterminated string: missing closing ${c}`);
        const d = text[i]!;
        if (d === c) {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < text.length && text[i + 1] !== '\n') {
          const e = text[i + 1]!;
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          i += 2;
          continue;
        }
        v += d;
        i++;
      }
      out.push({ t: 'string', v, line: start });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^-?(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?)/.exec(text.slice(i))!;
      const after = text[i + m[0].length] ?? '';
      if (/[A-Za-z_]/.test(after)) {
        const word = /^[^\s,\]#;]+/.exec(text.slice(i))![0];
        throw new XlConfigError(file, line, `"${word}" is neither a number nor a quoted string; put text in quotes`);
      }
      out.push({ t: 'number', v: Number(m[0]), text: m[0], line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i))!;
      out.push({ t: 'ident', v: m[0], line });
      i += m[0].length;
    } else if (c === '+' && text[i + 1] === '=') {
      out.push({ t: 'punct', v: '+=', line });
      i += 2;
    } else if (c === '=' || c === '[' || c === ']' || c === ',' || c === ';') {
      out.push({ t: 'punct', v: c, line });
      i++;
    } else {
      throw new XlConfigError(file, line, `unexpected character '${c}'`);
    }
  }
  out.push({ t: 'eof', line });
  return out;
}

/** Parses the text of an xl config file into its settings, in file order (later keys win). */
export function parseXlConfig(text: string, file = 'config'): XlSetting[] {
  const toks = tokenize(text, file);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  const skipNewlines = () => {
    while (peek().t === 'newline') p++;
  };

  function value(): XlValue {
    const tok = next();
    if (tok.t === 'string') return { kind: 'string', value: tok.v, line: tok.line };
    if (tok.t === 'number') return { kind: 'number', value: tok.v, text: tok.text, line: tok.line };
    if (tok.t === 'punct' && tok.v === '[') {
      const items: XlValue[] = [];
      for (;;) {
        skipNewlines();
        if (peek().t === 'punct' && (peek() as { v: string }).v === ']') {
          p++;
          break;
        }
        if (peek().t === 'eof') throw new XlConfigError(file, tok.line, "unterminated list: missing ']'");
        const item = value();
        if (item.kind === 'list') throw new XlConfigError(file, item.line, 'lists cannot be nested');
        items.push(item);
        skipNewlines();
        const sep = peek();
        if (sep.t === 'punct' && sep.v === ',') p++;
        else if (!(sep.t === 'punct' && sep.v === ']')) {
          if (sep.t === 'eof') throw new XlConfigError(file, tok.line, "unterminated list: missing ']'");
          throw new XlConfigError(file, sep.line, `expected ',' or ']' in the list, found ${describeToken(sep)}`);
        }
      }
      return { kind: 'list', items, line: tok.line };
    }
    if (tok.t === 'ident') throw new XlConfigError(file, tok.line, `"${tok.v}" is not a value; put text in quotes: "${tok.v}"`);
    throw new XlConfigError(file, tok.line, `expected a value (a "quoted string", a number or a [list]), found ${describeToken(tok)}`);
  }

  const settings: XlSetting[] = [];
  for (;;) {
    skipNewlines();
    const tok = next();
    if (tok.t === 'eof') break;
    if (tok.t === 'punct' && tok.v === ';') continue;
    if (tok.t !== 'ident') throw new XlConfigError(file, tok.line, `expected a setting name at the start of the line, found ${describeToken(tok)}`);
    const op = next();
    if (!(op.t === 'punct' && (op.v === '=' || op.v === '+='))) {
      throw new XlConfigError(file, op.line === tok.line ? op.line : tok.line, `expected '=' after '${tok.v}', found ${describeToken(op)}`);
    }
    const v = value();
    const end = next();
    if (!(end.t === 'newline' || end.t === 'eof' || (end.t === 'punct' && end.v === ';'))) {
      throw new XlConfigError(file, end.line, `unexpected ${describeToken(end)} after the value of '${tok.v}'; one setting per line`);
    }
    if (end.t === 'eof') p--;
    if (op.v === '+=') {
      const prev = [...settings].reverse().find((s) => s.key === tok.v);
      if (!prev) {
        settings.push({ key: tok.v, value: v, line: tok.line });
      } else if (prev.value.kind === 'list' && v.kind === 'list') {
        settings.push({ key: tok.v, value: { kind: 'list', items: [...prev.value.items, ...v.items], line: prev.value.line }, line: tok.line });
      } else if (prev.value.kind === 'string' && v.kind === 'string') {
        settings.push({ key: tok.v, value: { kind: 'string', value: prev.value.value + v.value, line: prev.value.line }, line: tok.line });
      } else {
        throw new XlConfigError(file, tok.line, `'+=' needs the same kind of value as the earlier '${tok.v}' (a list or a string)`);
      }
    } else settings.push({ key: tok.v, value: v, line: tok.line });
  }
  return settings;
}
