/**
 * JSON-RPC bodies over NATS request/reply (API.md §2.7): every gateway of a NATS-mode cluster
 * answers on `org.xen.xapi.xenops.classic` (xenopsd `--queue` changes it), one of them per request
 * (queue group). The subject is not under the store's prefix. nats.js is loaded on first use.
 */
import { CLASSIC_RPC_SUBJECT, NatsAuthenticationError, type NatsSecurityOptions } from '@xenops/core';
import { XenopsAuthError, XenopsConnectionError } from '../errors.js';
import { connectNats, type NatsConnection } from '../nats/connect.js';
import type { Transport } from './transport.js';

export interface NatsTarget {
  /** NATS server URL(s), comma-separated. */
  readonly servers: string;
  /** Default org.xen.xapi.xenops.classic. */
  readonly subject?: string;
  /** Credentials and TLS files, as xenopsd takes them. */
  readonly security?: NatsSecurityOptions;
  /** Shown by the NATS server (default `xenops-client`). */
  readonly name?: string;
}

export class NatsTransport implements Transport {
  readonly describe: string;
  readonly subject: string;
  private nc: Promise<NatsConnection> | undefined;

  constructor(private readonly target: NatsTarget) {
    this.subject = target.subject ?? CLASSIC_RPC_SUBJECT;
    this.describe = `${target.servers} (subject ${this.subject})`;
  }

  private connection(): Promise<NatsConnection> {
    this.nc ??= connectNats(this.target.servers, this.target.security ?? {}, { timeout: 3000, reconnect: false, name: this.target.name ?? 'xenops-client' }).catch(
      (e: unknown) => {
        this.nc = undefined;
        if (e instanceof NatsAuthenticationError) throw new XenopsAuthError(this.describe, true, e.message);
        const reason = e instanceof Error && e.cause instanceof Error ? e.cause.message : (e as Error).message;
        throw new XenopsConnectionError('nats-unreachable', this.target.servers, `cannot connect to the NATS server at ${this.target.servers}: ${reason}`, { cause: e });
      },
    );
    return this.nc;
  }

  async send(body: string, timeoutMs: number): Promise<string> {
    const nc = await this.connection();
    try {
      const msg = await nc.request(this.subject, body, { timeout: timeoutMs });
      return msg.string();
    } catch (e) {
      const err = e as Error & { isNoResponders?: () => boolean };
      if (typeof err.isNoResponders === 'function' && err.isNoResponders()) {
        throw new XenopsConnectionError('no-responders', this.describe, `no xenopsd gateway answers on NATS subject ${this.subject} at ${this.target.servers}`, { cause: e });
      }
      if (err.name === 'TimeoutError' || /timeout/i.test(err.message)) {
        throw new XenopsConnectionError('timeout', this.describe, `no reply from a xenopsd gateway on NATS subject ${this.subject} within ${Math.round(timeoutMs / 1000)} s`, { cause: e });
      }
      throw new XenopsConnectionError('other', this.describe, `NATS request to ${this.subject} failed: ${err.message}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    if (nc) await (await nc.catch(() => undefined))?.close().catch(() => undefined);
  }
}
