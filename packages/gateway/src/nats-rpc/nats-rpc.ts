/**
 * The NATS request/reply endpoint (API.md §2.7, §9.3): RPC bodies on `org.xen.xapi.xenops.classic`
 * (or `--queue NAME`), queue group `xenops-gateway` so that each request is handled by one
 * gateway. The reply is exactly the HTTP body; a message without a reply subject is executed and
 * not answered. Never throws on bad input. At most `maxInFlight` requests are handled at once;
 * past that a request is answered at once with an error naming the limit.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { CLASSIC_RPC_SUBJECT, TRACEPARENT_HEADER } from '@xenops/core';
import { DEFAULT_LIMITS, type LimitUsage } from '../limits/limits.js';
import { encodeJsonRpcFailure, JSONRPC_SERVER_ERROR } from '../rpc/jsonrpc.js';
import { bodyTooLargeReply, detectFormat, handleRpcBody, MAX_BODY_BYTES, xmlFailure, type Dispatcher } from '../rpc/handler.js';
import { encodeXmlRpcResponse } from '../rpc/xmlrpc.js';

export const CLASSIC_QUEUE = CLASSIC_RPC_SUBJECT;
export const GATEWAY_QUEUE_GROUP = 'xenops-gateway';

export interface NatsRpcOptions {
  /** Subject to serve; default {@link CLASSIC_QUEUE}. */
  readonly subject?: string;
  readonly maxBodyBytes?: number;
  /** Requests handled at once (blocking `UPDATES.get` included); default 1024. */
  readonly maxInFlight?: number;
  readonly log?: (line: string) => void;
}

/** The stable start of the `Internal_error` message of a reply too big for one NATS message. */
export const REPLY_TOO_LARGE_PREFIX = 'reply exceeds';

/** The stable start of the refusal's `Internal_error` message when too many requests are in flight. */
export const TOO_MANY_NATS_REQUESTS_PREFIX = 'too many concurrent NATS requests';

/** The bytes examined to tell the format (§2.2) of a refused body. */
const SNIFF_BYTES = 65536;

/** A Failure in the given format (JSON gets the v1 form with id null, as a 413 does). */
function failureReply(format: 'xml' | 'json', error: [string, string]): string {
  return format === 'xml' ? encodeXmlRpcResponse(xmlFailure(error)) : encodeJsonRpcFailure('1.0', null, error, JSONRPC_SERVER_ERROR, '');
}

export interface NatsRpcService {
  readonly subject: string;
  /** Requests being handled (resource `nats_requests`). */
  readonly usage: LimitUsage;
  /** Stops taking requests and waits (up to `graceMs`) for those in flight to be answered. */
  close(graceMs?: number): Promise<void>;
}

export function startNatsRpc(nc: NatsConnection, dispatch: Dispatcher, opts: NatsRpcOptions = {}): NatsRpcService {
  const subject = opts.subject ?? CLASSIC_QUEUE;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const log = opts.log ?? (() => {});
  const maxInFlight = opts.maxInFlight ?? DEFAULT_LIMITS.maxNatsRequests;
  const inFlight = new Set<Promise<void>>();
  let refusals = 0;

  const refuse = (data: Uint8Array, reply: string | undefined): void => {
    refusals++;
    if (!reply) return;
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      const format = detectFormat(body.subarray(0, SNIFF_BYTES), undefined);
      nc.publish(reply, failureReply(format, ['Internal_error', `${TOO_MANY_NATS_REQUESTS_PREFIX} (limit ${maxInFlight})`]));
    } catch (e) {
      log(`nats-rpc: cannot reply on ${reply}: ${(e as Error).message}`);
    }
  };

  const handle = async (data: Uint8Array, reply: string | undefined, traceparent: string | undefined): Promise<void> => {
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const answer =
      body.length > maxBody
        ? bodyTooLargeReply(body.subarray(0, SNIFF_BYTES), undefined, maxBody)
        : await handleRpcBody(body, undefined, dispatch, undefined, traceparent);
    if (!reply) return;
    const format = answer.body.startsWith('<') ? 'xml' : 'json';
    // One NATS message carries the reply (§2.7): one too big for the server gets an error the client can read.
    const maxPayload = nc.info?.max_payload;
    const size = Buffer.byteLength(answer.body);
    const out =
      maxPayload !== undefined && size > maxPayload
        ? failureReply(format, ['Internal_error', `${REPLY_TOO_LARGE_PREFIX} ${maxPayload} bytes (the NATS server's max_payload): it was ${size} bytes; HTTP has no such limit`])
        : answer.body;
    try {
      nc.publish(reply, out);
    } catch (e) {
      log(`nats-rpc: cannot reply on ${reply}: ${(e as Error).message}`);
    }
  };

  const sub = nc.subscribe(subject, {
    queue: GATEWAY_QUEUE_GROUP,
    callback: (err, msg) => {
      if (err) {
        log(`nats-rpc: subscription error: ${err.message}`);
        return;
      }
      if (inFlight.size >= maxInFlight) {
        refuse(msg.data, msg.reply);
        return;
      }
      const p = handle(msg.data, msg.reply, msg.headers?.get(TRACEPARENT_HEADER) || undefined).catch((e: unknown) => log(`nats-rpc: request failed: ${(e as Error).message}`));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
  });
  log(`nats-rpc: serving ${subject} (queue group ${GATEWAY_QUEUE_GROUP})`);

  return {
    subject,
    get usage() {
      return { resource: 'nats_requests', limit: maxInFlight, inUse: inFlight.size, refusals };
    },
    async close(graceMs = 5_000) {
      try {
        sub.unsubscribe();
      } catch {
        /* connection already closed */
      }
      if (inFlight.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise<void>((r) => {
          timer = setTimeout(r, graceMs);
          timer.unref();
        }),
      ]);
      if (timer) clearTimeout(timer);
    },
  };
}
