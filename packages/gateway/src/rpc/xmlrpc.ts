/**
 * XML-RPC codec (API.md §2.3, §3) on top of `saxes`, a strict, non-validating SAX parser.
 *
 * Security: a DOCTYPE is refused outright, so the only entities ever expanded are the five
 * predefined XML entities and character references (saxes knows no others and fails on them).
 *
 * Decoding is lenient (every accept form of §3) and produces `WireIn`: structs are null-prototype
 * objects. Encoding is strict and produces the emit forms of §3 from `WireOut`.
 */
import { isUtf8 } from 'node:buffer';
import { SaxesParser } from 'saxes';
import { IllFormedStringError, MAX_WIRE_NESTING, NestingLimitError, RpcDouble, wirePath, type WireIn, type WireOut } from './wire.js';

/** The body is not well-formed XML, or is not a `<methodCall>` with a `<methodName>`. */
export class XmlRpcParseError extends Error {
  override readonly name = 'XmlRpcParseError';
}

/**
 * The body is a well-formed `<methodCall>` with a `<methodName>`, but its `<params>` are not
 * XML-RPC (unknown value type, `<member>` without `<name>`, text between elements, ...). This is
 * not a fault (§2.3): the caller answers it with a Failure, as malformed params.
 */
export class XmlRpcValueError extends Error {
  override readonly name = 'XmlRpcValueError';
  constructor(
    readonly method: string,
    message: string,
  ) {
    super(message);
  }
}

export interface XmlRpcCall {
  method: string;
  params: WireIn[];
}

export type XmlRpcResponse = { kind: 'response'; value: WireIn } | { kind: 'fault'; code: number; message: string };

// ---------------------------------------------------------------------------------------------
// Element tree

interface XNode {
  name: string;
  children: XNode[];
  /** All direct character data (text and CDATA), concatenated. */
  text: string;
}

/**
 * Elements a document may nest per level of `<array>`/`<struct>` (`<value><array><data>`,
 * `<value><struct><member>`), plus the envelope and a leaf: deeper element nesting cannot be
 * XML-RPC within the nesting limit, whatever the elements are called.
 */
const ELEMENTS_PER_LEVEL = 3;
const ENVELOPE_ELEMENTS = 8;

class Malformed extends Error {}

function isContainer(name: string): boolean {
  const local = localName(name);
  return local === 'array' || local === 'struct';
}

/**
 * Builds the element tree. Throws `XmlRpcParseError` for text that is not well-formed XML (saxes
 * also refuses every character XML cannot carry: lone surrogates, NUL, `&#xD800;`), and
 * `NestingLimitError` as soon as `<array>`/`<struct>` values nest more than `maxNesting` deep.
 */
function parseTree(text: string, maxNesting: number = MAX_WIRE_NESTING): XNode {
  if (text.trim() === '') throw new XmlRpcParseError('unexpected end of input');
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: XNode[] = [];
  let root: XNode | undefined;
  let containers = 0;
  const maxElements = ELEMENTS_PER_LEVEL * maxNesting + ENVELOPE_ELEMENTS;
  parser.on('doctype', () => {
    throw new XmlRpcParseError('DOCTYPE is not allowed');
  });
  // saxes reports a self-closing tag as an opentag followed by a closetag.
  parser.on('opentag', (tag) => {
    if (isContainer(tag.name) && ++containers > maxNesting) throw new NestingLimitError(maxNesting);
    if (stack.length >= maxElements) throw new NestingLimitError(maxNesting);
    const node: XNode = { name: tag.name, children: [], text: '' };
    if (stack.length === 0) root = node;
    else stack[stack.length - 1]!.children.push(node);
    stack.push(node);
  });
  parser.on('closetag', () => {
    const node = stack.pop();
    if (node && isContainer(node.name)) containers--;
  });
  const onText = (t: string): void => {
    if (stack.length > 0) stack[stack.length - 1]!.text += t;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  try {
    parser.write(text).close();
  } catch (e) {
    if (e instanceof XmlRpcParseError || e instanceof NestingLimitError) throw e;
    throw new XmlRpcParseError(e instanceof Error ? e.message : String(e));
  }
  if (root === undefined) throw new XmlRpcParseError('no root element');
  return root;
}

// ---------------------------------------------------------------------------------------------
// Values

/** `ex:nil` → `nil`, `ex:i8` → `i8`. */
function localName(name: string): string {
  const i = name.lastIndexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

function isBlank(s: string): boolean {
  return /^[ \t\r\n]*$/.test(s);
}

/** Children of a container element: stray non-whitespace text is malformed. */
function elements(node: XNode): XNode[] {
  if (!isBlank(node.text)) throw new Malformed(`unexpected text in <${node.name}>`);
  return node.children;
}

function leafText(node: XNode): string {
  if (node.children.length > 0) throw new Malformed(`unexpected element <${node.children[0]!.name}> in <${node.name}>`);
  return node.text;
}

const INT_RE = /^[+-]?[0-9]+$/;
const DOUBLE_RE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

function numberOrText(text: string, re: RegExp): number | string {
  const t = text.trim();
  if (!re.test(t)) return text; // left to the IDL, which reports a type error at the right path
  const n = Number(t);
  return n === 0 ? 0 : n; // no -0
}

/** `decode()` with the path of an ill-formed string it meets made relative to `segment`. */
function within<T>(segment: string | number, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (!(e instanceof IllFormedStringError)) throw e;
    const rest = e.path;
    const head = wirePath('', segment);
    throw new IllFormedStringError(rest === '' ? head : rest.startsWith('[') ? `${head}${rest}` : `${head}.${rest}`);
  }
}

function decodeValue(node: XNode): WireIn {
  if (node.name !== 'value') throw new Malformed(`expected <value>, found <${node.name}>`);
  if (node.children.length === 0) return node.text; // untagged string; <value/> is ''
  const kids = elements(node);
  if (kids.length > 1) throw new Malformed('more than one element in <value>');
  const typed = kids[0]!;
  const type = localName(typed.name);
  switch (type) {
    case 'string':
    case 'dateTime.iso8601':
      return leafText(typed);
    case 'int':
    case 'i4':
    case 'i8':
      return numberOrText(leafText(typed), INT_RE);
    case 'double':
      return numberOrText(leafText(typed), DOUBLE_RE);
    case 'boolean': {
      const raw = leafText(typed);
      const t = raw.trim().toLowerCase();
      if (t === '1' || t === 'true') return true;
      if (t === '0' || t === 'false') return false;
      return raw;
    }
    case 'nil':
      leafText(typed);
      return null;
    case 'base64': {
      // Decoded to UTF-8 text (§3): bytes that are not UTF-8 are refused, never replaced.
      const bytes = Buffer.from(leafText(typed), 'base64');
      if (!isUtf8(bytes)) throw new IllFormedStringError('');
      return bytes.toString('utf8');
    }
    case 'struct': {
      const out = Object.create(null) as { [key: string]: WireIn };
      for (const member of elements(typed)) {
        if (member.name !== 'member') throw new Malformed(`expected <member>, found <${member.name}>`);
        let name: string | undefined;
        let value: XNode | undefined;
        for (const part of elements(member)) {
          if (part.name === 'name' && name === undefined) name = leafText(part);
          else if (part.name === 'value' && value === undefined) value = part;
          else throw new Malformed(`unexpected <${part.name}> in <member>`);
        }
        if (name === undefined) throw new Malformed('<member> without <name>');
        if (value === undefined) throw new Malformed('<member> without <value>');
        out[name] = within(name, () => decodeValue(value)); // duplicate names: the last wins
      }
      return out;
    }
    case 'array': {
      const parts = elements(typed);
      if (parts.length === 0) return []; // <array/>: lenient
      if (parts.length > 1 || parts[0]!.name !== 'data') throw new Malformed('<array> must hold one <data>');
      return elements(parts[0]!).map((v, i) => within(i, () => decodeValue(v)));
    }
    default:
      throw new Malformed(`unknown value type <${typed.name}>`);
  }
}

/** Decodes one `<value>` element given as text (tests and tools). */
export function parseXmlRpcValue(text: string): WireIn {
  const root = parseTree(text);
  try {
    return decodeValue(root);
  } catch (e) {
    if (e instanceof Malformed) throw new XmlRpcParseError(e.message);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Requests and responses

/**
 * Parses a `<methodCall>`. Throws `XmlRpcParseError` when the text is not well-formed XML or not a
 * `<methodCall>` with a non-empty `<methodName>`, `NestingLimitError` when values nest too deep,
 * `IllFormedStringError` when a `<base64>` string is not UTF-8 (path as in the named form:
 * `debug_info`, `vm.name`; else `params[i]…`), and `XmlRpcValueError` (carrying the method) when
 * the params are not XML-RPC values.
 */
export function parseXmlRpcCall(text: string): XmlRpcCall {
  const root = parseTree(text);
  if (root.name !== 'methodCall') throw new XmlRpcParseError(`expected <methodCall>, found <${root.name}>`);
  const nameNode = root.children.find((c) => c.name === 'methodName');
  const method = nameNode === undefined || nameNode.children.length > 0 ? '' : nameNode.text.trim();
  if (method === '') throw new XmlRpcParseError('<methodCall> has no <methodName>');
  try {
    let paramNodes: XNode[] = [];
    let seenName = false;
    let seenParams = false;
    for (const child of elements(root)) {
      if (child.name === 'methodName' && !seenName) seenName = true;
      else if (child.name === 'params' && !seenParams) {
        seenParams = true;
        paramNodes = elements(child).map((param) => {
          if (param.name !== 'param') throw new Malformed(`expected <param>, found <${param.name}>`);
          const vs = elements(param);
          if (vs.length !== 1) throw new Malformed('<param> must hold one <value>');
          return vs[0]!;
        });
      } else throw new Malformed(`unexpected <${child.name}> in <methodCall>`);
    }
    // Paths of the named form (one struct) start at its keys, as the argument decoder's do.
    const named = paramNodes.length === 1 && paramNodes[0]!.children.length === 1 && localName(paramNodes[0]!.children[0]!.name) === 'struct';
    const params = paramNodes.map((v, i) => (named ? decodeValue(v) : within('params', () => within(i, () => decodeValue(v)))));
    return { method, params };
  } catch (e) {
    if (e instanceof Malformed) throw new XmlRpcValueError(method, e.message);
    throw e;
  }
}

/** Parses a `<methodResponse>` (clients and tests). Throws `XmlRpcParseError` on anything else. */
export function parseXmlRpcResponse(text: string): XmlRpcResponse {
  const root = parseTree(text);
  if (root.name !== 'methodResponse') throw new XmlRpcParseError(`expected <methodResponse>, found <${root.name}>`);
  try {
    const kids = elements(root);
    if (kids.length !== 1) throw new Malformed('<methodResponse> must hold <params> or <fault>');
    const top = kids[0]!;
    if (top.name === 'params') {
      const params = elements(top);
      if (params.length !== 1 || params[0]!.name !== 'param') throw new Malformed('<params> must hold one <param>');
      const vs = elements(params[0]!);
      if (vs.length !== 1) throw new Malformed('<param> must hold one <value>');
      return { kind: 'response', value: decodeValue(vs[0]!) };
    }
    if (top.name === 'fault') {
      const vs = elements(top);
      if (vs.length !== 1) throw new Malformed('<fault> must hold one <value>');
      const v = decodeValue(vs[0]!);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Malformed('fault value is not a struct');
      const code = v['faultCode'];
      const message = v['faultString'];
      if (typeof code !== 'number' || typeof message !== 'string') throw new Malformed('fault lacks faultCode/faultString');
      return { kind: 'fault', code, message };
    }
    throw new Malformed(`unexpected <${top.name}> in <methodResponse>`);
  } catch (e) {
    if (e instanceof Malformed) throw new XmlRpcParseError(e.message);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

const XML_DECL = '<?xml version="1.0"?>';

/**
 * Escapes character data: `<>&"`, CR as `&#13;` (so it survives end-of-line normalisation), and
 * characters XML 1.0 cannot carry at all (C0 controls other than TAB/LF/CR, lone surrogates,
 * U+FFFE/U+FFFF) replaced by U+FFFD.
 */
export function escapeXmlText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[<>&"\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, (c) => {
    switch (c) {
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '&':
        return '&amp;';
      case '"':
        return '&quot;';
      case '\r':
        return '&#13;';
      default:
        return '\uFFFD';
    }
  });
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function integerText(n: number): string {
  return Number.isSafeInteger(n) ? String(n === 0 ? 0 : n) : BigInt(n).toString();
}

function encodeValueInto(v: WireOut, out: string[]): void {
  if (v === null) {
    out.push('<value><nil/></value>');
    return;
  }
  switch (typeof v) {
    case 'string':
      out.push('<value>', escapeXmlText(v), '</value>');
      return;
    case 'boolean':
      out.push(v ? '<value><boolean>1</boolean></value>' : '<value><boolean>0</boolean></value>');
      return;
    case 'number':
      if (Number.isInteger(v)) {
        const tag = v >= INT32_MIN && v <= INT32_MAX ? 'int' : 'i8';
        out.push(`<value><${tag}>`, integerText(v), `</${tag}></value>`);
      } else {
        out.push('<value><double>', String(v), '</double></value>');
      }
      return;
  }
  if (v instanceof RpcDouble) {
    out.push('<value><double>', String(v.value), '</double></value>');
    return;
  }
  if (Array.isArray(v)) {
    out.push('<value><array><data>');
    for (const x of v) encodeValueInto(x, out);
    out.push('</data></array></value>');
    return;
  }
  if (v instanceof Map) {
    out.push('<value><struct>');
    for (const [k, x] of v) {
      out.push('<member><name>', escapeXmlText(k), '</name>');
      encodeValueInto(x, out);
      out.push('</member>');
    }
    out.push('</struct></value>');
    return;
  }
  throw new TypeError(`cannot encode ${Object.prototype.toString.call(v)} as XML-RPC`);
}

/** One `<value>…</value>` element. */
export function encodeXmlRpcValue(v: WireOut): string {
  const out: string[] = [];
  encodeValueInto(v, out);
  return out.join('');
}

/** `<methodResponse>` with one param holding `value` (the caller builds the §2.3 Status struct). */
export function encodeXmlRpcResponse(value: WireOut): string {
  return `${XML_DECL}<methodResponse><params><param>${encodeXmlRpcValue(value)}</param></params></methodResponse>`;
}

/** `<methodResponse><fault>` with `faultCode` and `faultString`. */
export function encodeXmlRpcFault(code: number, message: string): string {
  const v = new Map<string, WireOut>([
    ['faultCode', code],
    ['faultString', message],
  ]);
  return `${XML_DECL}<methodResponse><fault>${encodeXmlRpcValue(v)}</fault></methodResponse>`;
}

/** A `<methodCall>` with one `<param>` per element of `params` (clients, the CLI, tests). */
export function encodeXmlRpcCall(method: string, params: WireOut[]): string {
  const out: string[] = [XML_DECL, '<methodCall><methodName>', escapeXmlText(method), '</methodName><params>'];
  for (const p of params) {
    out.push('<param>');
    encodeValueInto(p, out);
    out.push('</param>');
  }
  out.push('</params></methodCall>');
  return out.join('');
}
