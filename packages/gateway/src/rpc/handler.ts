/**
 * The codec-independent RPC entry point (API.md §2.1–§2.5): picks the body format, decodes the
 * envelope, hands each request to the dispatcher and encodes the reply. Transport-neutral (HTTP
 * and the NATS subject both use it); it never throws.
 */
import { isUtf8 } from 'node:buffer';
import {
  JSONRPC_INVALID_PARAMS,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_SERVER_ERROR,
  encodeJsonRpcFailure,
  encodeJsonRpcInvalid,
  encodeJsonRpcSuccess,
  parseJsonRpc,
  type JsonRpcCall,
  type JsonRpcEntry,
} from './jsonrpc.js';
import { classifyParams, type RpcParams } from './params.js';
import { toWireOut } from './values.js';
import { IllFormedStringError, NestingLimitError, describeError, singleLine, toErrorValue, type WireOut } from './wire.js';
import { XmlRpcValueError, encodeXmlRpcFault, encodeXmlRpcResponse, parseXmlRpcCall } from './xmlrpc.js';

export { type RpcParams } from './params.js';

export interface RpcRequest {
  method: string;
  params: RpcParams;
  format: 'xml' | 'json';
  jsonVersion?: '1.0' | '2.0';
  /**
   * A signal aborted when the caller is gone (its connection closed), so a blocking call may stop
   * waiting. A function: only blocking calls ask for it, and an AbortController per request is
   * measurable on the hot path.
   */
  callerGone?: () => AbortSignal;
  /** The W3C trace context the transport carried (HTTP or NATS header `traceparent`), unchecked. */
  traceparent?: string;
}

export type RpcOutcome =
  | { ok: true; value: WireOut }
  | {
      ok: false;
      /** The error variant, already encoded for the dialect. */
      error: WireOut;
      /** JSON-RPC v2 code: -32600/-32601/-32602/-32000. */
      code: number;
      /** One-line human text (v2 `message`). */
      message: string;
    };

export type Dispatcher = (req: RpcRequest) => Promise<RpcOutcome>;

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  /** May be '' (204). */
  body: string;
  /** Close the connection after the reply. */
  close?: boolean;
}

/** Default and spec maximum body size (§2.1). */
export const MAX_BODY_BYTES = 16777216;

/** XML-RPC fault code for unparseable bodies (§2.3). */
export const XMLRPC_PARSE_ERROR = -32700;

export const XML_CONTENT_TYPE = 'text/xml';
export const JSON_CONTENT_TYPE = 'application/json';

/**
 * §2.2: XML-RPC when the first non-whitespace character is `<` (a UTF-8 BOM is skipped) or the
 * Content-Type's media type is `text/xml`; otherwise JSON-RPC.
 */
export function detectFormat(body: Buffer, contentType: string | undefined): 'xml' | 'json' {
  if (contentType !== undefined && contentType.split(';', 1)[0]!.trim().toLowerCase() === 'text/xml') return 'xml';
  let i = 0;
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) i = 3;
  for (; i < body.length; i++) {
    const c = body[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    return c === 0x3c ? 'xml' : 'json';
  }
  return 'json';
}

/** The body as text, or undefined when its bytes are not UTF-8 (never replaced by U+FFFD). */
function decodeUtf8(body: Buffer): string | undefined {
  if (!isUtf8(body)) return undefined;
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

const NOT_UTF8 = 'body is not valid UTF-8';

function xmlReply(body: string, status = 200, close = false): HttpReply {
  const r: HttpReply = { status, headers: { 'Content-Type': XML_CONTENT_TYPE }, body };
  if (close) r.close = true;
  return r;
}

function jsonReply(body: string, status = 200, close = false): HttpReply {
  const r: HttpReply = { status, headers: { 'Content-Type': JSON_CONTENT_TYPE }, body };
  if (close) r.close = true;
  return r;
}

/** The §2.3 Failure struct `{Status: "Failure", ErrorDescription: <error>}`. */
export function xmlFailure(error: WireOut): WireOut {
  return new Map<string, WireOut>([
    ['Status', 'Failure'],
    ['ErrorDescription', error],
  ]);
}

/** The §2.3 Success struct `{Status: "Success", Value: <value>}`. */
export function xmlSuccess(value: WireOut): WireOut {
  return new Map<string, WireOut>([
    ['Status', 'Success'],
    ['Value', value],
  ]);
}

function internalOutcome(message: string, code = JSONRPC_SERVER_ERROR): RpcOutcome & { ok: false } {
  const error: WireOut = ['Internal_error', message];
  return { ok: false, error, code, message: `Internal_error: ${message}` };
}

/** Runs the dispatcher; anything it throws becomes a Failure (never a crash). */
async function runDispatch(dispatch: Dispatcher, req: RpcRequest): Promise<RpcOutcome> {
  try {
    const outcome = await dispatch(req);
    if (outcome === null || typeof outcome !== 'object' || typeof outcome.ok !== 'boolean') {
      return internalOutcome('dispatcher returned no outcome');
    }
    return outcome;
  } catch (e) {
    const value = toErrorValue(e);
    const error = toWireOut(value);
    return { ok: false, error, code: JSONRPC_SERVER_ERROR, message: describeError(value) };
  }
}

function errorMessage(e: unknown): string {
  return singleLine(e instanceof Error ? e.message : String(e));
}

// ---------------------------------------------------------------------------------------------
// XML-RPC

function encodeXmlOutcome(outcome: RpcOutcome): string {
  try {
    return encodeXmlRpcResponse(outcome.ok ? xmlSuccess(outcome.value) : xmlFailure(outcome.error));
  } catch (e) {
    return encodeXmlRpcResponse(xmlFailure(['Internal_error', `cannot encode the reply: ${errorMessage(e)}`]));
  }
}

async function handleXml(text: string, dispatch: Dispatcher): Promise<HttpReply> {
  let req: RpcRequest;
  try {
    const call = parseXmlRpcCall(text);
    req = { method: call.method, params: classifyParams(call.params), format: 'xml' };
  } catch (e) {
    // Well-formed XML that breaks a limit or holds a string the API cannot store: a Failure (§2.3).
    if (e instanceof NestingLimitError || e instanceof IllFormedStringError) {
      return xmlReply(encodeXmlOutcome(internalOutcome(e.message)));
    }
    if (e instanceof XmlRpcValueError) {
      req = { method: e.method, params: { form: 'malformed' }, format: 'xml' };
    } else {
      // A parser's message may quote the body; a RangeError on pathological input is still a
      // parse error, never a crash.
      return xmlReply(encodeXmlRpcFault(XMLRPC_PARSE_ERROR, `parse error: ${singleLine(errorMessage(e))}`));
    }
  }
  return xmlReply(encodeXmlOutcome(await runDispatch(dispatch, req)));
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC

function encodeJsonOutcome(call: JsonRpcCall, outcome: RpcOutcome): string {
  try {
    return outcome.ok
      ? encodeJsonRpcSuccess(call.version, call.id, outcome.value)
      : encodeJsonRpcFailure(call.version, call.id, outcome.error, outcome.code, outcome.message);
  } catch (e) {
    const o = internalOutcome(`cannot encode the reply: ${errorMessage(e)}`);
    try {
      return encodeJsonRpcFailure(call.version, call.id, o.error, o.code, o.message);
    } catch {
      return encodeJsonRpcFailure(call.version, null, o.error, o.code, o.message); // unencodable id
    }
  }
}

async function runEntry(entry: JsonRpcEntry, dispatch: Dispatcher): Promise<string> {
  if (entry.kind === 'invalid') return encodeJsonRpcInvalid(entry.version, entry.reason);
  // Arguments holding a string the API cannot store: refused before any method sees them.
  if (entry.refusal) return encodeJsonOutcome(entry, internalOutcome(entry.refusal.message, JSONRPC_INVALID_PARAMS));
  const outcome = await runDispatch(dispatch, {
    method: entry.method,
    params: entry.params,
    format: 'json',
    jsonVersion: entry.version,
  });
  return encodeJsonOutcome(entry, outcome);
}

async function handleJson(text: string, dispatch: Dispatcher): Promise<HttpReply> {
  const msg = parseJsonRpc(text);
  switch (msg.kind) {
    case 'invalid':
      return jsonReply(encodeJsonRpcInvalid(msg.version, msg.reason));
    case 'too-deep':
      // Answered as an unparseable body (§2.4: v1, id null), with the limit's own message.
      return jsonReply(encodeJsonRpcFailure('1.0', null, ['Internal_error', msg.message], JSONRPC_INVALID_REQUEST, `Internal_error: ${msg.message}`));
    case 'single':
      return jsonReply(await runEntry(msg.entry, dispatch));
    case 'batch': {
      const replies: string[] = [];
      for (const entry of msg.entries) {
        // one after another, in array order (§2.4)
        const reply = await runEntry(entry, dispatch);
        if (!(entry.kind === 'call' && entry.notification)) replies.push(reply);
      }
      if (replies.length === 0) return { status: 204, headers: {}, body: '' };
      return jsonReply(`[${replies.join(',')}]`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Handles one RPC body (HTTP POST or NATS message). Never rejects. */
export async function handleRpcBody(
  body: Buffer,
  contentType: string | undefined,
  dispatchAll: Dispatcher,
  callerGone?: () => AbortSignal,
  traceparent?: string,
): Promise<HttpReply> {
  const dispatch: Dispatcher = callerGone || traceparent ? (req) => dispatchAll({ ...req, callerGone, traceparent }) : dispatchAll;
  const format = detectFormat(body, contentType);
  try {
    const text = decodeUtf8(body);
    if (text === undefined) {
      // Not text at all: unparseable, in either format (§2.3, §2.4).
      return format === 'xml'
        ? xmlReply(encodeXmlRpcFault(XMLRPC_PARSE_ERROR, `parse error: ${NOT_UTF8}`))
        : jsonReply(encodeJsonRpcInvalid('1.0', NOT_UTF8));
    }
    return format === 'xml' ? await handleXml(text, dispatch) : await handleJson(text, dispatch);
  } catch (e) {
    // Last resort: a bug in a codec must not take the connection down with it.
    const error: WireOut = ['Internal_error', errorMessage(e)];
    return format === 'xml'
      ? xmlReply(encodeXmlRpcResponse(xmlFailure(error)))
      : jsonReply(`{"result":null,"error":${JSON.stringify(error)},"id":null}`);
  }
}

/**
 * The §2.1 reply to a body over the limit: status 413, a Failure in the format of the bytes
 * received so far (§2.2; JSON gets the v1 form with id null), and the connection closed.
 */
export function bodyTooLargeReply(
  bytesReceived: Buffer,
  contentType: string | undefined,
  limit: number = MAX_BODY_BYTES,
): HttpReply {
  const error: WireOut = ['Internal_error', `request body exceeds ${limit} bytes`];
  if (detectFormat(bytesReceived, contentType) === 'xml') {
    return xmlReply(encodeXmlRpcResponse(xmlFailure(error)), 413, true);
  }
  return jsonReply(encodeJsonRpcFailure('1.0', null, error, JSONRPC_SERVER_ERROR, ''), 413, true);
}
