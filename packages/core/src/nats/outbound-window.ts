/**
 * Holds a connection's NATS sends until the end of the event-loop turn, then issues them together.
 *
 * nats.js writes its outbound buffer to the socket in a microtask after the first send. Our sends
 * come from many macrotasks of one turn (one per HTTP request, per delivered log message, per
 * append that follows a committed one), so each became its own `write(2)`: on loopback, ~50 µs of
 * CPU each (the kernel hands the bytes to nats-server within the call), 13–15 % of a NATS-mode
 * cycle (profiled). Issued from one `setImmediate`, the sends of a turn share one buffer and one
 * write. The cost is one turn of latency (tens of µs when idle); nothing is acknowledged any
 * sooner, so durability is unchanged.
 */
export class OutboundWindow {
  private pending: (() => void)[] = [];

  /** `log` takes the failures of sends without a reply (nobody else can be told). */
  constructor(private readonly log: (line: string) => void) {}

  /** Runs `send` at the end of this turn, with every other send of the turn; settles as it does. */
  run<T>(send: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.defer(() => {
        try {
          send().then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /** Runs `send`, which has no reply to wait for, at the end of this turn. */
  defer(send: () => void): void {
    if (this.pending.length === 0) setImmediate(this.flush);
    this.pending.push(send);
  }

  private readonly flush = (): void => {
    const sends = this.pending;
    this.pending = [];
    for (const send of sends) {
      try {
        send();
      } catch (err) {
        // `run` reports its own errors; a send without a reply has nobody to tell but the log.
        this.log(`a deferred NATS send failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
}

const windows = new WeakMap<object, OutboundWindow>();

/**
 * The window of a connection (a nats.js `NatsConnection`, or any object standing for one):
 * everybody sending on it shares the same one.
 */
export function outboundWindowOf(nc: object, log: (line: string) => void): OutboundWindow {
  let w = windows.get(nc);
  if (!w) {
    w = new OutboundWindow(log);
    windows.set(nc, w);
  }
  return w;
}
