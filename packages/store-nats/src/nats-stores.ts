import {
  headers as natsHeaders,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import { type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import {
  BusRemoteError,
  BusPayloadTooLargeError,
  BusTimeoutError,
  AppendTooLargeError,
  ConcurrencyError,
  DEFAULT_BUS_TIMEOUT_MS,
  Delivery,
  errorText,
  messagesOfPages,
  stderrStoreLogger,
  type StoreLogger,
  NoResponderError,
  outboundWindowOf,
  StoreUnavailableError,
  type AppendRequest,
  type BusRequestOptions,
  type CommandBus,
  type EventLog,
  type OutboundWindow,
  type StoredMessage,
  type Subscription,
} from '@xenops/core';
import type { NatsStoreOptions, NatsStores } from './nats-store-options.js';
import { streamKeyOfSubject, type EventSubjectLayout } from './event-subjects.js';
import { connectNats } from './nats-connection.js';
import { openNatsResources } from './nats-resources.js';
import { isWrongLastSequence, natsNames, unavailable, type NatsNames } from './nats-names.js';
import { NatsSnapshotStore } from './nats-snapshot-store.js';
import { LEASE_TTL_MS, NatsHostRegistry, NatsLeases } from './nats-host-registry.js';
import { backupNats } from './nats-backup.js';
import { NatsLink } from './nats-link.js';
import { PageQueue } from './page-queue.js';

export { kvKey, natsNames, type NatsNames } from './nats-names.js';

const ERROR_HEADER = 'Xenops-Error';

/** A tail's state, for `writeProblem` (a tail without its consumer serves stale reads). */
interface TailHandle {
  close(): Promise<void>;
  /** Why the tail has no consumer now, or undefined. */
  problem(): string | undefined;
}

/** Messages a `read` keeps asked for (nats.js pulls more once a quarter of them has come). */
const READ_PULL_MESSAGES = 8192;
/** The most messages a `readPages` page holds. */
const READ_PAGE_MESSAGES = 1024;

class NatsEventLog implements EventLog {
  private closed = false;
  private readonly tails = new Set<TailHandle>();
  private readonly outbound: OutboundWindow;

  constructor(
    private readonly nc: NatsConnection,
    private readonly link: NatsLink,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: NatsNames,
    /** The subject layout of the stream, fixed when it was created. */
    private readonly layout: EventSubjectLayout,
    private readonly log: StoreLogger,
  ) {
    this.outbound = outboundWindowOf(nc, log);
  }

  private check(): void {
    if (this.closed || this.nc.isClosed()) throw new StoreUnavailableError('the NATS event log is closed');
  }

  async writeProblem(): Promise<string | undefined> {
    const down = this.link.problem();
    if (down) return down;
    for (const t of this.tails) {
      const p = t.problem();
      if (p) return p;
    }
    return undefined;
  }

  private subjectOf(stream: string): string {
    return this.names.eventSubject(stream, this.layout);
  }

  private toStored(m: JsMsg): StoredMessage {
    return { seq: m.seq, stream: streamKeyOfSubject(this.names.prefix, m.subject, this.layout), data: m.data };
  }

  async append(req: AppendRequest): Promise<number> {
    this.check();
    if (typeof req.stream !== 'string' || req.stream === '') throw new TypeError('append: stream must be a non-empty string');
    // Checked here so the caller gets a typed refusal, not the client's generic argument error.
    const maxPayload = this.nc.info?.max_payload;
    if (maxPayload !== undefined && req.data.length > maxPayload) throw new AppendTooLargeError(req.stream, req.data.length, maxPayload);
    const opts: Parameters<JetStreamClient['publish']>[2] = {};
    if (req.messageId !== undefined) opts.msgID = req.messageId;
    if (req.expectedLastSeq !== undefined) opts.expect = { lastSubjectSequence: req.expectedLastSeq };
    try {
      const subject = this.subjectOf(req.stream);
      const ack = await this.link.run(`append to ${req.stream}`, () => this.outbound.run(() => this.js.publish(subject, req.data, opts)));
      return ack.seq;
    } catch (err) {
      if (isWrongLastSequence(err)) throw new ConcurrencyError(req.stream, req.expectedLastSeq ?? 0);
      // A timed-out publish may still have been stored: retry with the same messageId.
      throw unavailable(`append to ${req.stream} failed`, err);
    }
  }

  async head(): Promise<number> {
    this.check();
    try {
      const si = await this.link.run('head', () => this.jsm.streams.info(this.names.stream));
      return si.state.last_seq;
    } catch (err) {
      throw unavailable('head failed', err);
    }
  }

  async lastAppendTime(): Promise<number | undefined> {
    this.check();
    try {
      const { last_ts: lastTs, last_seq: lastSeq } = (await this.link.run('lastAppendTime', () => this.jsm.streams.info(this.names.stream))).state;
      return lastSeq === 0 ? undefined : Date.parse(lastTs);
    } catch (err) {
      throw unavailable('lastAppendTime failed', err);
    }
  }

  async firstSeq(): Promise<number> {
    this.check();
    try {
      const { first_seq: first, last_seq: last } = (await this.link.run('firstSeq', () => this.jsm.streams.info(this.names.stream))).state;
      return first === 0 ? last + 1 : first;
    } catch (err) {
      throw unavailable('firstSeq failed', err);
    }
  }

  async truncateBefore(seq: number): Promise<void> {
    this.check();
    try {
      const head = (await this.jsm.streams.info(this.names.stream)).state.last_seq;
      // JetStream's purge up to (not including) a sequence; the newest message always stays.
      await this.jsm.streams.purge(this.names.stream, { seq: Math.min(seq, head) });
    } catch (err) {
      throw unavailable('truncate failed', err);
    }
  }

  async lastSeqOf(stream: string): Promise<number> {
    this.check();
    try {
      const m = await this.link.run(`lastSeqOf ${stream}`, () => this.jsm.streams.getMessage(this.names.stream, { last_by_subj: this.subjectOf(stream) }));
      return m ? m.seq : 0;
    } catch (err) {
      throw unavailable(`lastSeqOf ${stream} failed`, err);
    }
  }

  /**
   * Messages with after < seq <= end through an ordered consumer, in pages. `filter` is passed as
   * a single string: nats.js 3.x then sends `filter_subject` (the array form `filter_subjects`
   * needs 2.10). The consumer hands messages to a callback, not an iterator: a start reads the
   * whole log here, and an await per message cost a start over 250,000 messages 0.3-0.9 s.
   */
  private async *range(after: number, end: number, filter?: string): AsyncGenerator<StoredMessage[]> {
    if (end <= after) return;
    const pages = new PageQueue<StoredMessage>(READ_PAGE_MESSAGES);
    let messages: ConsumerMessages | undefined;
    let consumer: { delete(): Promise<boolean> } | undefined;
    let unwatch: (() => void) | undefined;
    try {
      try {
        const c = await this.link.run('read', () =>
          this.js.consumers.get(this.names.stream, {
            opt_start_seq: after + 1,
            ...(filter !== undefined ? { filter_subjects: filter } : {}),
          }),
        );
        consumer = c;
        // Big pulls: a start folds the whole log through `read`, and every pull is a round trip.
        messages = await c.consume({
          max_messages: READ_PULL_MESSAGES,
          callback: (m) => {
            if (pages.ended) return;
            try {
              if (m.seq > end) return pages.end();
              pages.push(this.toStored(m));
              if (m.seq >= end || m.info.pending === 0) pages.end();
            } catch (e) {
              // A message the stream should not hold (a subject of no stream key): the read fails
              // with it, as it did when the messages were iterated, and nats.js never sees it.
              pages.fail(e as Error);
            }
          },
        });
      } catch (err) {
        throw unavailable('read failed', err);
      }
      // A read cut off by a drop fails (it must never look complete), at the drop.
      const reading = messages;
      unwatch = this.link.whenDown((why) => {
        pages.fail(new StoreUnavailableError(`read failed: ${why.message}`));
        reading.stop();
      });
      void reading.closed().then((err) =>
        pages.fail(new StoreUnavailableError(`read failed: the consumer ended before seq ${end}${err ? ` (${err.message})` : ''}`, { cause: err })),
      );
      yield* pages;
    } finally {
      unwatch?.();
      messages?.stop();
      consumer?.delete().catch(() => {});
    }
  }

  read(afterSeq: number, toSeq?: number): AsyncIterable<StoredMessage> {
    return messagesOfPages(this.readPages(afterSeq, toSeq));
  }

  readPages(afterSeq: number, toSeq?: number): AsyncIterable<readonly StoredMessage[]> {
    this.check();
    // "toSeq defaults to the head at call time": fetch it now, not at the first next().
    const end = (async () => {
      const head = await this.head();
      return toSeq === undefined ? head : Math.min(toSeq, head);
    })();
    end.catch(() => {});
    const self = this;
    return (async function* () {
      yield* self.range(afterSeq, await end);
    })();
  }

  readStream(stream: string, afterSeq = 0): AsyncIterable<StoredMessage> {
    this.check();
    const end = this.lastSeqOf(stream);
    end.catch(() => {});
    const self = this;
    return (async function* () {
      yield* messagesOfPages(self.range(afterSeq, await end, self.subjectOf(stream)));
    })();
  }

  /**
   * An ordered consumer from the cursor, rebuilt by the tail itself (not by nats.js's ordered
   * consumer reset) when the connection comes back, when heartbeats are missed or when the server
   * lost the consumer: after a NATS restart the library's reset waits on its own back-off (the
   * pull expiry, 5 s) and re-pulls with a batch of 0 while the old pull's count is still pending,
   * so the tail (and every reply waiting on the read model) stalled 5-7.5 s. Recreating from the
   * cursor costs one consumer create.
   */
  tail(afterSeq: number, handler: (m: StoredMessage) => void | Promise<void>): Subscription {
    this.check();
    const delivery = new Delivery(this.log);
    let stopped = false;
    let messages: ConsumerMessages | undefined;
    let wake: (() => void) | undefined;
    let cursor = afterSeq;
    /** Since when the tail has had no consumer (after a failure), or undefined. */
    let lostSince: number | undefined;
    let lastError: unknown;
    // The connection is back: drop the consumer (the server may have lost it) and rebuild now.
    const restart = () => {
      messages?.stop();
      wake?.();
    };
    const unwatch = this.link.whenBack(restart);
    const loop = (async () => {
      let failures = 0;
      while (!stopped && !this.nc.isClosed()) {
        let consumer: { delete(): Promise<boolean> } | undefined;
        try {
          this.link.check(`tail of ${this.names.stream}`);
          const c = await this.js.consumers.get(this.names.stream, { opt_start_seq: cursor + 1 });
          consumer = c;
          if (stopped) break;
          // A short pull expiry (so a heartbeat every few seconds): a dead pull is noticed within
          // seconds instead of the 30 s default.
          const m = await c.consume({ max_messages: 1024, expires: TAIL_PULL_EXPIRES_MS });
          messages = m;
          if (stopped) break;
          failures = 0;
          lostSince = undefined;
          let lastDelivery = Date.now();
          void (async () => {
            for await (const n of m.status()) {
              // Missed heartbeats while the tail works through what it has received are the
              // tail's own doing (a long queue keeps the event loop from the socket): only a tail
              // that got nothing for that long has lost its consumer. Rebuilding it then would
              // throw away the queue and have the server send it all again, over and over.
              const stalled = n.type === 'heartbeats_missed' && Date.now() - lastDelivery > TAIL_PULL_EXPIRES_MS;
              if (stalled || n.type === 'consumer_not_found' || n.type === 'consumer_deleted' || n.type === 'reset' || n.type === 'stream_not_found') {
                m.stop();
                return;
              }
            }
          })().catch(() => {});
          for await (const msg of m) {
            if (stopped) break;
            lastDelivery = Date.now();
            if (msg.seq <= cursor) continue; // after a restart of the consumer
            await delivery.deliver(handler, this.toStored(msg));
            cursor = msg.seq;
          }
        } catch (err) {
          if (stopped || this.nc.isClosed()) break;
          failures++;
          lostSince ??= Date.now();
          lastError = err;
          if (failures === 1 || failures % 30 === 0) {
            this.log(`tail of ${this.names.stream} interrupted at seq ${cursor}, retrying: ${errorText(err)}`);
          }
        } finally {
          messages?.stop();
          messages = undefined;
          consumer?.delete().catch(() => {});
        }
        if (!stopped) {
          // The consumer ended (restarted, deleted, server gone, ...): resume from the cursor, at
          // once the first time, then every quarter second up to one (the link wakes it sooner).
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, failures === 0 ? 0 : Math.min(250 * failures, 1000));
          });
          wake = undefined;
        }
      }
    })();
    const sub: TailHandle = {
      problem: () =>
        lostSince !== undefined && !stopped
          ? `the tail of ${this.names.stream} has had no consumer since ${new Date(lostSince).toISOString()} (at seq ${cursor}): ${lastError instanceof Error ? lastError.message : String(lastError)}`
          : undefined,
      close: async (): Promise<void> => {
        if (!stopped) {
          stopped = true;
          unwatch();
          messages?.stop();
          wake?.();
          this.tails.delete(sub);
        }
        // A handler is running (maybe the caller): later deliveries are stopped; do not wait.
        if (!delivery.active) await loop;
      },
    };
    this.tails.add(sub);
    return sub;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.tails].map((t) => t.close()));
    this.closed = true;
  }
}

function headersOf(values: Readonly<Record<string, string>>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(values)) h.set(k, v);
  return h;
}

class NatsCommandBus implements CommandBus {
  private closed = false;
  private readonly subs = new Set<Subscription>();
  private readonly outbound: OutboundWindow;

  constructor(
    private readonly nc: NatsConnection,
    private readonly link: NatsLink,
    private readonly names: NatsNames,
    log: StoreLogger,
  ) {
    this.outbound = outboundWindowOf(nc, log);
  }

  async serve(address: string, handler: (request: Uint8Array) => Promise<Uint8Array>): Promise<Subscription> {
    if (this.closed || this.nc.isClosed()) throw new StoreUnavailableError('the NATS bus is closed');
    const inflight = new Set<Promise<void>>();
    const respond = async (msg: Msg): Promise<void> => {
      let reply: Uint8Array;
      let opts: { headers: MsgHdrs } | undefined;
      try {
        reply = await handler(msg.data);
      } catch (err) {
        reply = new TextEncoder().encode(err instanceof Error ? err.message : String(err));
        opts = { headers: natsHeaders() };
        opts.headers.set(ERROR_HEADER, '1');
      }
      // Awaited: close() waits for the requests in flight, and so for their replies to be sent.
      await this.outbound.run(async () => void msg.respond(reply, opts));
    };
    const sub = this.nc.subscribe(this.names.commandSubject(address), {
      queue: this.names.queueGroup,
      callback: (err, msg) => {
        if (err) return;
        const p = respond(msg).catch(() => {});
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      },
    });
    try {
      // The server must know the subscription before serve() returns, or a request sent right
      // after would find no responder.
      await this.nc.flush();
    } catch (err) {
      sub.unsubscribe();
      throw unavailable(`serve ${address} failed`, err);
    }
    let closing: Promise<void> | undefined;
    const s: Subscription = {
      close: () =>
        (closing ??= (async () => {
          this.subs.delete(s);
          // A drain while NATS is down waits for the server: the requests in flight fail anyway.
          if (!this.link.isUp) sub.unsubscribe();
          else if (!this.nc.isClosed() && !sub.isClosed()) {
            try {
              await sub.drain();
            } catch {
              sub.unsubscribe();
            }
          }
          await Promise.allSettled([...inflight]);
        })()),
    };
    this.subs.add(s);
    return s;
  }

  async request(address: string, data: Uint8Array, options?: BusRequestOptions): Promise<Uint8Array> {
    if (this.closed || this.nc.isClosed()) throw new StoreUnavailableError('the NATS bus is closed');
    const timeoutMs = options?.timeoutMs ?? DEFAULT_BUS_TIMEOUT_MS;
    // Checked here so the caller gets a typed refusal, not the client's generic argument error.
    const maxPayload = this.nc.info?.max_payload;
    if (maxPayload !== undefined && data.length > maxPayload) throw new BusPayloadTooLargeError(address, data.length, maxPayload);
    let reply: Msg;
    try {
      const subject = this.names.commandSubject(address);
      const headers = options?.headers ? headersOf(options.headers) : undefined;
      // Fails at once while NATS is down, and at the drop for a request in flight: the agent may
      // or may not have decided it, as after a timeout, but the caller knows in a second, not ten.
      reply = await this.link.run(`request to ${address}`, () =>
        this.outbound.run(() => this.nc.request(subject, data, { timeout: timeoutMs, ...(headers ? { headers } : {}) })),
      );
    } catch (err) {
      if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
        throw new NoResponderError(address);
      }
      if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
        throw new BusTimeoutError(address, timeoutMs);
      }
      if (err instanceof StoreUnavailableError) throw err;
      throw unavailable(`request to ${address} failed`, err);
    }
    if (reply.headers?.get(ERROR_HEADER)) {
      throw new BusRemoteError(address, new TextDecoder().decode(reply.data));
    }
    return reply.data;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subs].map((s) => s.close()));
  }
}

const TAIL_PULL_EXPIRES_MS = 5_000;

/**
 * Connects to NATS and opens the stream, the KV bucket, the object store (snapshots too big for
 * one message) and the bus of `opts.prefix`, creating the stream and the buckets when missing (a
 * user not allowed to create them gets a StorePermissionError naming what is missing: see
 * `xenopsd --nats-setup`). A server that is down, or refuses the credentials, at open fails fast
 * with a typed error (NatsUnreachableError, NatsAuthenticationError); later outages are ridden out
 * by reconnecting forever: operations in the meantime, and those in flight at the drop, fail at
 * once with StoreUnavailableError (NatsLink), and the tails rebuild their consumers when it is back.
 */
export async function openNatsStores(opts: NatsStoreOptions): Promise<NatsStores> {
  const names = natsNames(opts.prefix);
  const nc = await connectNats(opts.servers, opts, {
    name: opts.name ?? 'xenops',
    maxReconnectAttempts: -1,
    // Every request would otherwise build two Error objects (stack captures) up front in case it
    // fails: a tenth of the CPU of a NATS-mode cycle (profiled). Our errors say what failed.
    noAsyncTraces: true,
    // Back within a quarter second of the server (the default waits 2 s between attempts), and a
    // dead server behind a live TCP path noticed within ~10 s (two missed pings) instead of 4 min.
    reconnectTimeWait: 250,
    pingInterval: 5_000,
    ...(opts.role ? { inboxPrefix: names.inboxPrefix(opts.role) } : {}),
  });
  try {
    const { jsm, js, layout, kv, os, hosts, leases } = await openNatsResources(nc, names, opts);
    const storeLog = opts.log ?? stderrStoreLogger;
    const link = new NatsLink(nc, opts.servers);
    const log = new NatsEventLog(nc, link, js, jsm, names, layout, storeLog);
    const snapshots = new NatsSnapshotStore(kv, os, jsm, names, nc.info?.max_payload ?? 1024 * 1024, storeLog, link);
    const bus = new NatsCommandBus(nc, link, names, storeLog);
    let closing: Promise<void> | undefined;
    return {
      mode: 'nats',
      nats: nc,
      log,
      snapshots,
      bus,
      hosts: new NatsHostRegistry(hosts, jsm, names.hostsBucket, names.hostsStream),
      leases: new NatsLeases(leases, LEASE_TTL_MS),
      backup: (backupOpts) => backupNats(nc, jsm, names, snapshots, backupOpts, opts.role ? names.inboxPrefix(opts.role) : undefined),
      close: () =>
        (closing ??= (async () => {
          await bus.close();
          await log.close();
          await snapshots.close();
          if (nc.isClosed()) return;
          if (!link.isUp) {
            // Nothing can be flushed to a server that is gone: close at once.
            await nc.close().catch(() => {});
            return;
          }
          // drain can wait for a server that is gone; bound it.
          let timer: NodeJS.Timeout | undefined;
          const drained = nc.drain().then(
            () => 'drained' as const,
            () => 'failed' as const,
          );
          const t = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 5000)));
          const outcome = await Promise.race([drained, t]);
          clearTimeout(timer);
          if (outcome !== 'drained' && !nc.isClosed()) await nc.close().catch(() => {});
        })()),
    };
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
}
