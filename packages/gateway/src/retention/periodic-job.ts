/**
 * A background pass run every `everyMs` (an unref'd timer: it never keeps the process up), never
 * two at once. A failing pass is logged and the next tick tries again; `stop` waits for the pass
 * under way.
 */
export class PeriodicJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly name: string,
    private readonly pass: () => Promise<unknown>,
    private readonly everyMs: number,
    private readonly logger?: (line: string) => void,
    /** A pass runs only while this says so (a cluster lease: one gateway runs the job). */
    private readonly mayRun: () => boolean = () => true,
  ) {}

  /** Starts the ticks; `runNow` also runs a pass at once. */
  start(runNow = false): void {
    if (runNow) this.tick();
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  /** Runs a pass now unless one is under way or the job may not run. */
  tick(): void {
    if (!this.mayRun()) return;
    this.running ??= this.pass()
      .then(() => undefined)
      .catch((e: unknown) => this.logger?.(`${this.name}: ${(e as Error).message}`))
      .finally(() => (this.running = undefined));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
