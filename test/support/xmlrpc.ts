/**
 * A tiny, standalone XML-RPC encoder and decoder for the end-to-end tests. Deliberately independent
 * of the gateway's own codec, so that the tests do not check the product against itself.
 */

/** Forces a `<double>` encoding for a number (JS cannot tell 30.0 from 30). */
export class XmlDouble {
  constructor(readonly value: number) {}
}
export const xmlDouble = (n: number): XmlDouble => new XmlDouble(n);

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function encodeXmlValue(v: unknown): string {
  if (v instanceof XmlDouble) return `<value><double>${v.value}</double></value>`;
  if (v === null || v === undefined) return '<value><nil/></value>';
  if (typeof v === 'string') return `<value><string>${escapeXml(v)}</string></value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      return Math.abs(v) < 2 ** 31 ? `<value><int>${v}</int></value>` : `<value><i8>${v}</i8></value>`;
    }
    return `<value><double>${v}</double></value>`;
  }
  if (Array.isArray(v)) return `<value><array><data>${v.map(encodeXmlValue).join('')}</data></array></value>`;
  if (typeof v === 'object') {
    const members = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `<member><name>${escapeXml(k)}</name>${encodeXmlValue(x)}</member>`)
      .join('');
    return `<value><struct>${members}</struct></value>`;
  }
  throw new Error(`cannot encode ${typeof v} as XML-RPC`);
}

export function encodeXmlRpcCall(method: string, params: readonly unknown[]): string {
  return (
    `<?xml version="1.0"?><methodCall><methodName>${escapeXml(method)}</methodName><params>` +
    params.map((p) => `<param>${encodeXmlValue(p)}</param>`).join('') +
    `</params></methodCall>`
  );
}

// ---------------------------------------------------------------------------------------------
// A minimal XML parser: elements, attributes (ignored), text, entities, CDATA, comments, PIs.

export interface XmlElement {
  name: string;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    return String.fromCodePoint(parseInt(e.slice(1), 10));
  });
}

export function parseXml(text: string): XmlElement {
  let i = 0;
  const root: XmlElement = { name: '#root', children: [] };
  const stack: XmlElement[] = [root];
  while (i < text.length) {
    if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i);
      if (end < 0) throw new Error('unterminated processing instruction');
      i = end + 2;
    } else if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end < 0) throw new Error('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i);
      if (end < 0) throw new Error('unterminated CDATA');
      stack[stack.length - 1]!.children.push(text.slice(i + 9, end));
      i = end + 3;
    } else if (text.startsWith('</', i)) {
      const end = text.indexOf('>', i);
      const name = text.slice(i + 2, end).trim();
      const top = stack.pop();
      if (!top || top.name !== name) throw new Error(`mismatched </${name}>`);
      i = end + 1;
    } else if (text[i] === '<') {
      const end = text.indexOf('>', i);
      if (end < 0) throw new Error('unterminated tag');
      let inner = text.slice(i + 1, end);
      const selfClosing = inner.endsWith('/');
      if (selfClosing) inner = inner.slice(0, -1);
      const name = inner.trim().split(/\s+/)[0]!;
      const el: XmlElement = { name, children: [] };
      stack[stack.length - 1]!.children.push(el);
      if (!selfClosing) stack.push(el);
      i = end + 1;
    } else {
      const end = text.indexOf('<', i);
      const raw = text.slice(i, end < 0 ? text.length : end);
      stack[stack.length - 1]!.children.push(decodeEntities(raw));
      i = end < 0 ? text.length : end;
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  const top = root.children.find((c): c is XmlElement => typeof c !== 'string');
  if (!top) throw new Error('no root element');
  return top;
}

const elements = (e: XmlElement): XmlElement[] => e.children.filter((c): c is XmlElement => typeof c !== 'string');
const textOf = (e: XmlElement): string => e.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
function child(e: XmlElement, name: string): XmlElement {
  const c = elements(e).find((x) => x.name === name);
  if (!c) throw new Error(`<${e.name}> has no <${name}>`);
  return c;
}

/** Decodes a `<value>` element to a plain JS value. */
export function decodeXmlValue(v: XmlElement): unknown {
  const typed = elements(v)[0];
  if (!typed) return textOf(v);
  switch (typed.name) {
    case 'string':
    case 'dateTime.iso8601':
      return textOf(typed);
    case 'base64':
      return Buffer.from(textOf(typed), 'base64').toString('utf8');
    case 'int':
    case 'i4':
    case 'i8':
    case 'double':
      return Number(textOf(typed).trim());
    case 'boolean': {
      const t = textOf(typed).trim();
      return t === '1' || t === 'true';
    }
    case 'nil':
    case 'ex:nil':
      return null;
    case 'array':
      return elements(child(typed, 'data')).map(decodeXmlValue);
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const m of elements(typed)) {
        if (m.name !== 'member') continue;
        out[textOf(child(m, 'name'))] = decodeXmlValue(child(m, 'value'));
      }
      return out;
    }
    default:
      throw new Error(`unknown XML-RPC type <${typed.name}>`);
  }
}

export type XmlRpcResponse = { kind: 'params'; value: unknown } | { kind: 'fault'; faultCode: number; faultString: string };

export function parseXmlRpcResponse(text: string): XmlRpcResponse {
  const root = parseXml(text);
  if (root.name !== 'methodResponse') throw new Error(`expected <methodResponse>, got <${root.name}>`);
  const first = elements(root)[0];
  if (!first) throw new Error('empty <methodResponse>');
  if (first.name === 'fault') {
    const f = decodeXmlValue(child(first, 'value')) as { faultCode: number; faultString: string };
    return { kind: 'fault', faultCode: f.faultCode, faultString: f.faultString };
  }
  const params = elements(first).filter((p) => p.name === 'param');
  if (params.length !== 1) throw new Error(`expected exactly one <param>, got ${params.length}`);
  return { kind: 'params', value: decodeXmlValue(child(params[0]!, 'value')) };
}
