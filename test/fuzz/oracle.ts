/**
 * What every reply to a fuzz request must look like: an envelope of the request's format (§2.3,
 * §2.4), UTF-8, and errors that are xenops error values whose `Internal_error` messages are the
 * single-line texts of API.md (§6.3's prefixes and the method-specific ones of §5, §7, §8), never
 * a leaked JavaScript exception.
 */
import { isUtf8 } from 'node:buffer';
import { ErrorCatalogueT } from '@xenops/core';
import { parseXmlRpcResponse } from '../support/xmlrpc.js';
import type { FuzzRequest } from './requests.js';

/** Error tags a reply may carry: the catalogue of §6.1 and the seed spellings of §6.4. */
const KNOWN_TAGS = new Set([...ErrorCatalogueT.ctors.keys(), 'Maximum_vcpus', 'Failed_to_achnowledge_shutdown_request']);

/** How API.md words `Internal_error` messages (§6.3 and the method tables). */
export const INTERNAL_ERROR_PREFIXES = [
  // §6.3
  "Expecting named argument '",
  "No value found for key '",
  'Type error at ',
  'Integer out of range at ',
  'invalid id',
  'malformed params',
  'invalid JSON-RPC request: ',
  'request body exceeds ',
  'request nesting exceeds ',
  'as_of ',
  'Interrupted by service restart',
  'Timed out while waiting on task ',
  // §8.3 DEBUG.trigger, §7.9 import_metadata, §5.1 HOST.*, §7.3 memory range, §7.11 hosts
  'DEBUG.trigger ',
  'VBD plug ordering violated: ',
  'import_metadata: ',
  'pool_size must be at least 1',
  'memory dynamic range: ',
  'no agent for host ',
  // README "Limits": a NATS reply over the server's max_payload (§2.7 names that limit, not its words)
  'reply exceeds ',
  // §9.7 placement: an explicit host that is unknown or Down
  'host ',
] as const;

/** Texts that only a leaked exception produces. */
const CRASH_MARKERS = /Maximum call stack|Cannot read propert|is not a function|is not iterable|undefined|\[object |RangeError|TypeError|SyntaxError|ReferenceError|undecodable|refused to append/;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A problem with an error value, or undefined when it is a proper xenops error. */
export function errorValueProblem(e: unknown): string | undefined {
  const tag = typeof e === 'string' ? e : Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' ? e[0] : undefined;
  if (tag === undefined) return `not an error variant: ${preview(e)}`;
  if (!KNOWN_TAGS.has(tag)) return `unknown error tag ${JSON.stringify(tag)}`;
  if (tag !== 'Internal_error') return undefined;
  const message = (e as [string, unknown])[1];
  if (typeof message !== 'string') return `Internal_error payload is not a string: ${preview(message)}`;
  if (/[\r\n]/.test(message)) return `Internal_error message is not single-line: ${preview(message)}`;
  if (!message.isWellFormed()) return `Internal_error message is not well-formed Unicode: ${preview(message)}`;
  if (CRASH_MARKERS.test(message)) return `Internal_error leaks an exception: ${preview(message)}`;
  if (!INTERNAL_ERROR_PREFIXES.some((p) => message.startsWith(p))) return `Internal_error message is not one of API.md's: ${preview(message)}`;
  return undefined;
}

export function preview(v: unknown, max = 300): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}... (${s.length} chars)` : s;
}

const V2_CODES = new Set([-32600, -32601, -32602, -32000]);

function jsonEntryProblem(entry: unknown): string | undefined {
  if (!isRecord(entry)) return `reply entry is not an object: ${preview(entry)}`;
  if (entry.jsonrpc === '2.0') {
    if ('result' in entry === 'error' in entry) return `v2 reply must hold exactly one of result/error: ${preview(entry)}`;
    if (!('error' in entry)) return undefined;
    const err = entry.error;
    if (!isRecord(err)) return `v2 error is not an object: ${preview(err)}`;
    if (typeof err.code !== 'number' || !V2_CODES.has(err.code)) return `v2 error code ${preview(err.code)} is not one of §2.4's`;
    if (typeof err.message !== 'string' || /[\r\n]/.test(err.message)) return `v2 message is not a single line: ${preview(err.message)}`;
    return errorValueProblem(err.data);
  }
  if (!('result' in entry) || !('error' in entry) || !('id' in entry)) return `v1 reply lacks result/error/id: ${preview(entry)}`;
  return entry.error === null ? undefined : errorValueProblem(entry.error);
}

/** Problems with an HTTP (or NATS) reply to `req`; empty when the reply is right. */
export function replyProblems(req: FuzzRequest, status: number | undefined, contentType: string | undefined, body: Buffer): string[] {
  const problems: string[] = [];
  if (status !== undefined && status !== 200 && status !== 204) problems.push(`HTTP status ${status}`);
  if (!isUtf8(body)) problems.push('reply is not UTF-8');
  const text = body.toString('utf8');
  if (req.codec === 'xml') {
    if (contentType !== undefined && !contentType.startsWith('text/xml')) problems.push(`Content-Type ${contentType} for an XML request`);
    let r: ReturnType<typeof parseXmlRpcResponse>;
    try {
      r = parseXmlRpcResponse(text);
    } catch (e) {
      return [...problems, `reply is not XML-RPC: ${(e as Error).message}: ${preview(text)}`];
    }
    if (r.kind === 'fault') {
      if (r.faultCode !== -32700 || !r.faultString.startsWith('parse error: ')) problems.push(`fault other than §2.3's parse error: ${preview(r)}`);
      return problems;
    }
    const v = r.value;
    if (!isRecord(v) || (v.Status !== 'Success' && v.Status !== 'Failure')) return [...problems, `not a §2.3 Status struct: ${preview(v)}`];
    if (v.Status === 'Failure') {
      const p = errorValueProblem(v.ErrorDescription);
      if (p) problems.push(p);
    }
    return problems;
  }
  // A batch of notifications only gets no reply entries: 204 over HTTP, an empty body over NATS (§2.4, §2.7).
  const notificationsOnly = req.batch && req.id === undefined;
  if (status === 204 || (status === undefined && text === '')) {
    if (!notificationsOnly || text !== '') problems.push(`empty reply to a request that is not a batch of notifications: ${preview(text)}`);
    return problems;
  }
  if (contentType !== undefined && !contentType.startsWith('application/json')) problems.push(`Content-Type ${contentType} for a JSON request`);
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch (e) {
    return [...problems, `reply is not JSON: ${(e as Error).message}: ${preview(text)}`];
  }
  for (const entry of Array.isArray(reply) ? reply : [reply]) {
    const p = jsonEntryProblem(entry);
    if (p) problems.push(p);
  }
  return problems;
}

/** Problems with an agent's reply to a command message (the bus protocol, not §6.3's texts). */
export function commandReplyProblem(reply: { ok: boolean; error?: unknown }, errorHeader: boolean, raw: Buffer): string | undefined {
  if (errorHeader) {
    const message = raw.toString('utf8');
    return CRASH_MARKERS.test(message) && !message.startsWith('undecodable command') ? `agent handler threw: ${preview(message)}` : undefined;
  }
  if (reply.ok) return undefined;
  const e = reply.error;
  const tag = Array.isArray(e) ? e[0] : e;
  if (typeof tag !== 'string') return `agent error is not a variant: ${preview(e)}`;
  if (tag === 'Internal_error') {
    const message = (e as [string, unknown])[1];
    if (typeof message !== 'string' || /[\r\n]/.test(message)) return `agent error message is not a single line: ${preview(message)}`;
    if (message.startsWith('undecodable agent reply')) return `agent reply undecodable: ${preview(message)}`;
    if (/Maximum call stack|Cannot read propert|is not a function|is not iterable|\[object /.test(message)) return `agent error leaks an exception: ${preview(message)}`;
  }
  return undefined;
}
