/**
 * The NATS request/reply endpoint (API.md §2.7, §9.3): RPC bodies on `org.xen.xapi.xenops.classic`
 * (or `--queue NAME`), queue group `xenops-gateway` so that each request is handled by one
 * gateway. The reply is exactly the HTTP body; a message without a reply subject is executed and
 * not answered. Never throws on bad input.
 */
import type { Stores } from '@xenops/core';
import { encodeJsonRpcFailure, JSONRPC_SERVER_ERROR } from '../rpc/jsonrpc.js';
import { bodyTooLargeReply, handleRpcBody, MAX_BODY_BYTES, xmlFailure, type Dispatcher } from '../rpc/handler.js';
import { encodeXmlRpcResponse } from '../rpc/xmlrpc.js';

export const CLASSIC_QUEUE = 'org.xen.xapi.xenops.classic';
export const GATEWAY_QUEUE_GROUP = 'xenops-gateway';

export interface NatsRpcOptions {
  /** Subject to serve; default {@link CLASSIC_QUEUE}. */
  readonly subject?: string;
  readonly maxBodyBytes?: number;
  readonly log?: (line: string) => void;
}

export interface NatsRpcService {
  readonly subject: string;
  /** Stops taking requests and waits (up to `graceMs`) for those in flight to be answered. */
  close(graceMs?: number): Promise<void>;
}

export function startNatsRpc(nc: NonNullable<Stores['nats']>, dispatch: Dispatcher, opts: NatsRpcOptions = {}): NatsRpcService {
  const subject = opts.subject ?? CLASSIC_QUEUE;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const log = opts.log ?? (() => {});
  const inFlight = new Set<Promise<void>>();

  const handle = async (data: Uint8Array, reply: string | undefined): Promise<void> => {
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const answer =
      body.length > maxBody ? bodyTooLargeReply(body.subarray(0, 65536), undefined, maxBody) : await handleRpcBody(body, undefined, dispatch);
    if (!reply) return;
    try {
      nc.publish(reply, answer.body);
    } catch (e) {
      // e.g. the reply exceeds the server's max_payload: answer with an error the client can read
      log(`nats-rpc: cannot reply on ${reply}: ${(e as Error).message}`);
      try {
        const error = ['Internal_error', `reply not sent: ${(e as Error).message}`];
        nc.publish(
          reply,
          answer.body.startsWith('<')
            ? encodeXmlRpcResponse(xmlFailure(error))
            : encodeJsonRpcFailure('1.0', null, error, JSONRPC_SERVER_ERROR, ''),
        );
      } catch {
        /* nothing more to do */
      }
    }
  };

  const sub = nc.subscribe(subject, {
    queue: GATEWAY_QUEUE_GROUP,
    callback: (err, msg) => {
      if (err) {
        log(`nats-rpc: subscription error: ${err.message}`);
        return;
      }
      const p = handle(msg.data, msg.reply).catch((e: unknown) => log(`nats-rpc: request failed: ${(e as Error).message}`));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
  });
  log(`nats-rpc: serving ${subject} (queue group ${GATEWAY_QUEUE_GROUP})`);

  return {
    subject,
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
