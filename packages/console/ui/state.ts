/**
 * What the console knows: every VM and task, loaded once (`VM.list`, `Task.list`) and kept live
 * from the change stream. Components subscribe with `useConsole`; a burst of records (a start is
 * a dozen) renders once per animation frame.
 */
import { useEffect, useState } from 'preact/hooks';
import { call, UnauthorizedError } from './api.js';
import { followChanges, type FeedState } from './changes.js';
import type { ChangeRecord, Task, VmConfig, VmState } from './wire.js';

export interface VmEntry {
  readonly config: VmConfig;
  readonly state: VmState;
  /** The host whose agent wrote the VM's latest change (a VM's stream has one writer: its owner). */
  readonly host?: string;
  /** Seq of the latest change seen. */
  readonly seq: number;
}

/** An action the page started: the task it returned, for the activity panel. */
export interface Action {
  readonly taskId?: string;
  readonly vmId: string;
  readonly vmName: string;
  readonly label: string;
  readonly started: number;
  /** The call itself failed (no task): the service's words. */
  readonly error?: string;
}

export type LoadState = 'loading' | 'ready' | 'unauthorized' | 'failed';

class ConsoleState {
  vms = new Map<string, VmEntry>();
  tasks = new Map<string, Task>();
  /** Tasks destroyed since the load, last state kept (an action's task may be destroyed by its caller at once). */
  readonly destroyed = new Map<string, Task>();
  actions: Action[] = [];
  feed: FeedState = 'connecting';
  load: LoadState = 'loading';
  loadError = '';
  seq = 0;
  /** Time from the start of the load to the first full table (ms): shown, and read by the tests. */
  loadMs = 0;
  private version = 0;
  private readonly listeners = new Set<() => void>();
  private scheduled = false;
  private stopFeed: (() => void) | undefined;

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get revision(): number {
    return this.version;
  }

  changed(): void {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    });
  }

  async start(): Promise<void> {
    this.stopFeed?.();
    const t0 = performance.now();
    this.load = 'loading';
    this.changed();
    try {
      // The head first: the lists are at least that new, and the feed replays what came after.
      const head = await call<number>('UPDATES.last_id');
      const [vms, tasks] = await Promise.all([call<Array<[VmConfig, VmState]>>('VM.list'), call<Task[]>('Task.list')]);
      const hostOf = await vmHosts();
      this.vms = new Map(vms.map(([config, state]) => [config.id, { config, state, seq: head, host: hostOf(config.id) }]));
      this.tasks = new Map(tasks.map((t) => [t.id, t]));
      this.seq = head;
      this.load = 'ready';
      this.loadMs = performance.now() - t0;
      this.stopFeed = followChanges({
        since: head,
        onRecord: (r) => this.apply(r),
        onState: (s) => {
          this.feed = s;
          if (s === 'unauthorized') this.load = 'unauthorized';
          this.changed();
        },
      });
    } catch (e) {
      this.load = e instanceof UnauthorizedError ? 'unauthorized' : 'failed';
      this.loadError = (e as Error).message;
    }
    this.changed();
  }

  private apply(r: ChangeRecord): void {
    this.seq = Math.max(this.seq, r.seq);
    const [, [, value]] = r.change;
    if (r.kind === 'vm') {
      const id = r.id[1] as string;
      const pair = value[0] as [VmConfig, VmState] | undefined;
      if (!pair) this.vms.delete(id);
      else this.vms.set(id, { config: pair[0], state: pair[1], host: r.host, seq: r.seq });
    } else if (r.kind === 'task') {
      const id = r.id[1] as string;
      const task = value[0] as Task | undefined;
      const before = this.tasks.get(id);
      if (task) this.tasks.set(id, task);
      else if (before) {
        this.tasks.delete(id);
        this.destroyed.set(id, before);
        if (this.destroyed.size > 500) this.destroyed.delete(this.destroyed.keys().next().value!);
      }
    }
    this.changed();
  }

  track(a: Action): void {
    this.actions = [a, ...this.actions].slice(0, 20);
    this.changed();
  }

  dismiss(a: Action): void {
    this.actions = this.actions.filter((x) => x !== a);
    this.changed();
  }
}

/**
 * The host of each VM at load time: from `HOST.list` (API.md §9.7, each host's `vms`) where the
 * service has it; an embedded service is one host (§9.7), named by `get_diagnostics`. Otherwise
 * unknown until the VM's next change record names the host that wrote it.
 */
async function vmHosts(): Promise<(vm: string) => string | undefined> {
  try {
    const hosts = await call<Array<{ id: string; vms: string[] }>>('HOST.list');
    const owner = new Map(hosts.flatMap((h) => h.vms.map((vm) => [vm, h.id] as const)));
    return (vm) => owner.get(vm);
  } catch {
    const d = JSON.parse(await call<string>('get_diagnostics')) as { host?: string; mode?: string };
    return () => (d.mode === 'embedded' ? d.host : undefined);
  }
}

export const consoleState = new ConsoleState();

/** Resolves with the task once it has ended (as the change stream tells it). */
export function taskEnded(id: string): Promise<Task> {
  return new Promise((resolve) => {
    const check = (): boolean => {
      const t = consoleState.tasks.get(id) ?? consoleState.destroyed.get(id);
      if (!t || t.state[0] === 'Pending') return false;
      resolve(t);
      return true;
    };
    if (check()) return;
    const stop = consoleState.subscribe(() => {
      if (check()) stop();
    });
  });
}

/** Re-renders the caller whenever the console's state changed (at most once a frame). */
export function useConsole(): ConsoleState {
  const [, setRevision] = useState(consoleState.revision);
  useEffect(() => consoleState.subscribe(() => setRevision(consoleState.revision)), []);
  return consoleState;
}
