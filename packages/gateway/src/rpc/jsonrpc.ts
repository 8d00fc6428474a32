/**
 * JSON-RPC v1 and v2 envelopes (API.md §2.4): request classification and reply encoders.
 *
 * Classification never throws: every body is a single entry, a non-empty batch, or a whole-body
 * error (unparseable JSON, neither object nor array, empty batch).
 */
import { classifyParams, type RpcParams } from './params.js';
import { wireInToOut } from './values.js';
import {
  IllFormedStringError,
  MAX_WIRE_NESTING,
  NestingLimitError,
  findIllFormedString,
  isWireObject,
  jsonMayHoldIllFormedString,
  jsonNestingExceeds,
  parseJsonWire,
  singleLine,
  wireToJson,
  type WireIn,
  type WireOut,
} from './wire.js';

export type JsonRpcVersion = '1.0' | '2.0';

/** JSON-RPC 2.0 error codes used by xenops-ts (§2.4). */
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_METHOD_NOT_FOUND = -32601;
export const JSONRPC_INVALID_PARAMS = -32602;
export const JSONRPC_SERVER_ERROR = -32000;

export interface JsonRpcCall {
  kind: 'call';
  version: JsonRpcVersion;
  /** The request's `id` as received (null when absent). */
  id: WireIn;
  /** No `id` member. Only meaningful inside a batch: a single request is always answered. */
  notification: boolean;
  method: string;
  params: RpcParams;
  /** The params hold a string that is not well-formed Unicode: answered with this, never dispatched. */
  refusal?: IllFormedStringError;
}

/** An object (or batch entry) that is not a JSON-RPC request; answered with id null. */
export interface JsonRpcInvalid {
  kind: 'invalid';
  version: JsonRpcVersion;
  reason: string;
}

export type JsonRpcEntry = JsonRpcCall | JsonRpcInvalid;

export type JsonRpcMessage =
  | { kind: 'single'; entry: JsonRpcEntry }
  | { kind: 'batch'; entries: JsonRpcEntry[] /* non-empty */ }
  | { kind: 'invalid'; version: JsonRpcVersion; reason: string }
  /** Nests deeper than the limit; `message` is the error's text. Not parsed at all. */
  | { kind: 'too-deep'; message: string };

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/**
 * Classifies one request object (top level or batch entry). With `checkStrings`, every string is
 * checked to be well-formed Unicode: one outside `params` (method, id, any other member or key)
 * makes the entry invalid; one inside `params` refuses the call with the path of the argument
 * (named form: `debug_info`, `vm.name`; else `params[1]…`).
 */
export function classifyJsonRpcEntry(v: WireIn, checkStrings = false): JsonRpcEntry {
  if (!isWireObject(v)) return { kind: 'invalid', version: '2.0', reason: 'not a request object' };
  const version: JsonRpcVersion = v['jsonrpc'] === '2.0' ? '2.0' : '1.0';
  if (checkStrings) {
    for (const key of Object.keys(v)) {
      if (key === 'params') continue;
      const bad = findIllFormedString({ [key]: v[key] });
      if (bad !== undefined) return { kind: 'invalid', version, reason: new IllFormedStringError(bad).message };
    }
  }
  if (!hasOwn(v, 'method')) return { kind: 'invalid', version, reason: "missing 'method'" };
  const method = v['method'];
  if (typeof method !== 'string') return { kind: 'invalid', version, reason: "'method' is not a string" };
  const hasId = hasOwn(v, 'id');
  const params = classifyParams(hasOwn(v, 'params') ? v['params'] : undefined, { allowObject: version === '2.0' });
  const call: JsonRpcCall = { kind: 'call', version, id: hasId ? v['id']! : null, notification: !hasId, method, params };
  if (checkStrings && hasOwn(v, 'params')) {
    const bad = params.form === 'named' ? findIllFormedString(params.args) : findIllFormedString(v['params'], 'params');
    if (bad !== undefined) call.refusal = new IllFormedStringError(bad);
  }
  return call;
}

/**
 * Parses and classifies a JSON-RPC body. Nesting is bounded before parsing (a deep body is slow
 * to parse and would overflow every recursive step after it).
 */
export function parseJsonRpc(text: string, maxNesting: number = MAX_WIRE_NESTING): JsonRpcMessage {
  const json = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (jsonNestingExceeds(json, maxNesting)) return { kind: 'too-deep', message: new NestingLimitError(maxNesting).message };
  let body: WireIn;
  try {
    body = parseJsonWire(json);
  } catch (e) {
    // V8's message quotes the body (newlines, half surrogate pairs): made one well-formed line.
    return { kind: 'invalid', version: '1.0', reason: `JSON parse error: ${singleLine(e instanceof Error ? e.message : String(e))}` };
  }
  // Only text that spells a surrogate can parse to an ill-formed string: the usual body skips the walk.
  const checkStrings = jsonMayHoldIllFormedString(json);
  if (Array.isArray(body)) {
    if (body.length === 0) return { kind: 'invalid', version: '2.0', reason: 'empty batch' };
    return {
      kind: 'batch',
      entries: body.map((e) => {
        const entry = classifyJsonRpcEntry(e, checkStrings);
        // In a batch, an entry that is not a request is always a v2 -32600 entry (§2.4).
        return entry.kind === 'invalid' ? { ...entry, version: '2.0' as const } : entry;
      }),
    };
  }
  if (!isWireObject(body)) return { kind: 'invalid', version: '1.0', reason: 'body is neither an object nor an array' };
  return { kind: 'single', entry: classifyJsonRpcEntry(body, checkStrings) };
}

/** The error variant for a body or entry that is not a JSON-RPC request. */
export function invalidRequestError(reason: string): WireOut {
  return ['Internal_error', `invalid JSON-RPC request: ${reason}`];
}

/** A success reply: v1 `{"result","error":null,"id"}`, v2 `{"jsonrpc":"2.0","result","id"}`. */
export function encodeJsonRpcSuccess(version: JsonRpcVersion, id: WireIn, result: WireOut): string {
  const idText = wireToJson(wireInToOut(id));
  const resultText = wireToJson(result);
  return version === '2.0'
    ? `{"jsonrpc":"2.0","result":${resultText},"id":${idText}}`
    : `{"result":${resultText},"error":null,"id":${idText}}`;
}

/**
 * A failure reply: v1 `{"result":null,"error":<variant>,"id"}`, v2
 * `{"jsonrpc":"2.0","error":{"code","message","data":<variant>},"id"}` (`code`/`message` unused in v1).
 */
export function encodeJsonRpcFailure(
  version: JsonRpcVersion,
  id: WireIn,
  error: WireOut,
  code: number,
  message: string,
): string {
  const idText = wireToJson(wireInToOut(id));
  const errorText = wireToJson(error);
  // `message` is one line of text (§2.4) even when the error quotes the caller (`Unimplemented`
  // of a method name holding a newline): `data` keeps the error exactly.
  return version === '2.0'
    ? `{"jsonrpc":"2.0","error":{"code":${code},"message":${JSON.stringify(singleLine(message, 1000))},"data":${errorText}},"id":${idText}}`
    : `{"result":null,"error":${errorText},"id":${idText}}`;
}

/** The reply to an invalid body or entry (id null; v2 code -32600). */
export function encodeJsonRpcInvalid(version: JsonRpcVersion, reason: string): string {
  const text = `invalid JSON-RPC request: ${reason}`;
  return encodeJsonRpcFailure(version, null, invalidRequestError(reason), JSONRPC_INVALID_REQUEST, `Internal_error: ${text}`);
}
