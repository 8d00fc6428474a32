/**
 * JSON-RPC bodies over NATS request/reply (API.md §2.7): every gateway of a NATS-mode cluster
 * answers on `org.xen.xapi.xenops.classic`.
 */
import { connectNats, type NatsConnection } from '@xenops/client';
import { NatsAuthenticationError, type NatsSecurityOptions } from '@xenops/core';
import { CliError, ExitCode } from '../errors.js';
import type { Transport } from './transport.js';

export const DEFAULT_NATS_SUBJECT = 'org.xen.xapi.xenops.classic';

export class NatsTransport implements Transport {
  readonly describe: string;
  private nc: NatsConnection | undefined;

  constructor(
    private readonly url: string,
    private readonly subject: string = DEFAULT_NATS_SUBJECT,
    /** Credentials and TLS files (`--nats-creds`, `--nats-nkey`, `--nats-tls-*`), as xenopsd takes them. */
    private readonly security: NatsSecurityOptions = {},
  ) {
    this.describe = `${url} (subject ${subject})`;
  }

  private async connection(): Promise<NatsConnection> {
    if (this.nc) return this.nc;
    try {
      this.nc = await connectNats(this.url, this.security, { timeout: 3000, reconnect: false, name: 'xenops-cli' });
    } catch (e) {
      if (e instanceof NatsAuthenticationError) throw new CliError(`${e.message}; check --nats-creds, --nats-nkey and --nats-tls-ca`, ExitCode.AUTH);
      const reason = e instanceof Error && e.cause instanceof Error ? e.cause.message : (e as Error).message;
      throw new CliError(`cannot connect to the NATS server at ${this.url}: ${reason}; start nats-server (with -js) or check --nats`, ExitCode.CONNECTION);
    }
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
        throw new CliError(
          `no xenopsd gateway answers on NATS subject ${this.subject} at ${this.url}; start one with 'xenopsd --nats ${this.url}'`,
          ExitCode.CONNECTION,
        );
      }
      if (err.name === 'TimeoutError' || /timeout/i.test(err.message)) {
        throw new CliError(`no reply from a xenopsd gateway on NATS subject ${this.subject} within ${Math.round(timeoutMs / 1000)} s`, ExitCode.CONNECTION);
      }
      throw new CliError(`NATS request to ${this.subject} failed: ${err.message}`, ExitCode.CONNECTION);
    }
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    if (nc) await nc.close().catch(() => undefined);
  }
}
