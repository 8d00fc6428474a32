/** Every leaf atom's time limit (API.md §7.2). */
export const ATOM_TIMEOUT_MS = 1_200_000;

/** An atom ran past its limit: the task fails with `Timed out while waiting on task <id>`. */
export class AtomTimeoutError extends Error {
  override readonly name = 'AtomTimeoutError';
  constructor(readonly limitMs: number) {
    super(`an atom ran longer than ${limitMs} ms`);
  }
}

/**
 * The limit of the atoms of one task. One timer per task, restarted (`refresh`, no allocation)
 * when each atom starts, ignored while no atom runs (the task's own log writes between atoms have
 * their own timeouts). When it expires, `signal` aborts, which ends the atom's waits, and the
 * atom's promise loses the race even if the backend does not listen.
 */
export class AtomDeadline {
  private readonly expiry = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private running = false;
  private readonly reached: Promise<never>;

  constructor(limitMs: number = ATOM_TIMEOUT_MS) {
    const { signal } = this.expiry;
    this.reached = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    this.reached.catch(() => undefined);
    this.timer = setTimeout(() => {
      if (this.running) this.expiry.abort(new AtomTimeoutError(limitMs));
    }, limitMs);
    this.timer.unref();
  }

  /** Aborted once an atom ran past the limit. */
  get signal(): AbortSignal {
    return this.expiry.signal;
  }

  /** Runs one atom within the limit; rejects with AtomTimeoutError when it is exceeded. */
  async run<T>(atom: () => Promise<T>): Promise<T> {
    if (this.expiry.signal.aborted) throw this.expiry.signal.reason;
    this.running = true;
    this.timer.refresh();
    try {
      return await Promise.race([atom(), this.reached]);
    } finally {
      this.running = false;
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
