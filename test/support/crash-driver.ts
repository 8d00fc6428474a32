/**
 * Crash-safety driver (issue 5 item 5): many concurrent clients run a budget of mixed mutating
 * calls against a service whose endpoint may die and come back, while a ledger records what the
 * service acknowledged. At a chosen call number a fault is injected (kill -9 + restart, NATS
 * server stop/start); calls without a reply at that moment are counted as in flight. Afterwards
 * `checkAfterFault` proves nothing acknowledged was lost, every task ended, no VM is stuck and
 * `GET /verify` is clean.
 *
 * Each VM belongs to exactly one client, so the ledger's per-VM order is the client's call order.
 */
import { httpRequest, type XenopsdTask } from './rpc.js';
import { xenopsdVm, vmId } from './vms.js';

// ---------------------------------------------------------------------------------------------
// Seeded PRNG

/** mulberry32: small, fast, good enough for test schedules. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pickWeighted<T extends string>(rnd: () => number, weights: Partial<Record<T, number>>): T {
  const entries = Object.entries(weights).filter(([, w]) => (w as number) > 0) as [T, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let x = rnd() * total;
  for (const [k, w] of entries) {
    x -= w;
    if (x < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// A JSON-RPC v1 call with its own timeout, against whatever endpoint is current

export type CallOutcome = { kind: 'ok'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'transport'; message: string };

let nextId = 1;

export async function rpc(url: string | undefined, method: string, args: Record<string, unknown>, timeoutMs = 20_000): Promise<CallOutcome> {
  if (!url) return { kind: 'transport', message: 'no endpoint' };
  const id = nextId++;
  try {
    const reply = await httpRequest(
      { url },
      {
        body: JSON.stringify({ method, params: [{ debug_info: 'crash-driver', ...args }], id }),
        headers: { 'Content-Type': 'application/json' },
        timeoutMs,
      },
    );
    if (reply.status !== 200) return { kind: 'transport', message: `HTTP ${reply.status}: ${reply.body.slice(0, 200)}` };
    const env = JSON.parse(reply.body) as { result?: unknown; error?: unknown; id?: unknown };
    if (env.id !== id) return { kind: 'transport', message: `reply id ${String(env.id)} != ${id}` };
    if (env.error !== null && env.error !== undefined) return { kind: 'error', error: env.error };
    return { kind: 'ok', value: env.result };
  } catch (e) {
    return { kind: 'transport', message: (e as Error).message };
  }
}

/** Errors that prove the call changed nothing. Anything else (Internal_error, transport) is ambiguous. */
export function isDefinitiveRefusal(error: unknown): boolean {
  const tag = Array.isArray(error) ? error[0] : error;
  return tag === 'Bad_power_state' || tag === 'Does_not_exist' || tag === 'Device_is_connected' || tag === 'Domain_not_built';
}

// ---------------------------------------------------------------------------------------------
// Ledger

export type OpName =
  | 'VM.add'
  | 'VM.start'
  | 'VM.unpause'
  | 'VM.pause'
  | 'VM.shutdown'
  | 'VM.reboot'
  | 'VM.suspend'
  | 'VM.resume'
  | 'VBD.add'
  | 'VIF.add'
  | 'Task.destroy'
  | 'VM.remove';

export interface CallRecord {
  readonly n: number;
  readonly client: number;
  readonly method: OpName;
  readonly vm: string;
  state: 'pending' | 'ok' | 'error' | 'transport';
  inFlightAtFault: boolean;
  value?: unknown;
  error?: unknown;
}

export interface VmLedger {
  addAcked: boolean;
  /** A remove that may have taken effect (acknowledged or ambiguous). */
  removeMaybe: boolean;
  removeAcked: boolean;
  devices: Array<{ kind: 'VBD' | 'VIF'; dev: string }>;
}

export interface TaskLedger {
  readonly id: string;
  readonly vm: string;
  readonly method: OpName;
  destroyMaybe: boolean;
  destroyAcked: boolean;
}

export class Ledger {
  readonly calls: CallRecord[] = [];
  readonly vms = new Map<string, VmLedger>();
  readonly tasks = new Map<string, TaskLedger>();
  faultAtMs?: number;
  /** When the fault's restart finished. */
  faultEndMs?: number;
  /** The first reply of success to a call after the restart finished. */
  firstAckAfterFaultMs?: number;
  /** Times of every acknowledgement (ms since the epoch). */
  readonly ackTimes: number[] = [];
  /** The longest stretch, from the fault on, during which no call was acknowledged (seconds). */
  get maxAckGapSeconds(): number {
    if (this.faultAtMs === undefined) return 0;
    let prev = this.faultAtMs;
    let max = 0;
    for (const t of this.ackTimes) {
      if (t < this.faultAtMs) continue;
      max = Math.max(max, t - prev);
      prev = t;
    }
    return max / 1000;
  }
  /** Seconds from the end of the restart to the first acknowledged call. */
  get recoverySeconds(): number | undefined {
    return this.faultEndMs === undefined || this.firstAckAfterFaultMs === undefined ? undefined : (this.firstAckAfterFaultMs - this.faultEndMs) / 1000;
  }
  get acknowledged(): number {
    return this.calls.filter((c) => c.state === 'ok').length;
  }
  get inFlight(): number {
    return this.calls.filter((c) => c.inFlightAtFault).length;
  }
  get errored(): number {
    return this.calls.filter((c) => c.state === 'error').length;
  }
  get transportErrors(): number {
    return this.calls.filter((c) => c.state === 'transport').length;
  }
  countBy(method: OpName, state: CallRecord['state'] = 'ok'): number {
    return this.calls.filter((c) => c.method === method && c.state === state).length;
  }
}

// ---------------------------------------------------------------------------------------------
// Driver

export interface Fault {
  /** Runs the fault. In-flight calls are counted just before it starts. */
  run(): Promise<void>;
}

export interface DriverOptions {
  /** The current gateway URL (it changes when the process serving it restarts). */
  url(): string | undefined;
  seed: number;
  totalOps?: number;
  clients?: number;
  /** Call number (1-based) at which the fault is injected. */
  faultAt: number;
  fault: Fault;
  maxVmsPerClient?: number;
}

export async function runDriver(opts: DriverOptions): Promise<{ ledger: Ledger; faultDone: Promise<void> }> {
  const total = opts.totalOps ?? 500;
  const nClients = opts.clients ?? 16;
  const maxVms = opts.maxVmsPerClient ?? 6;
  const ledger = new Ledger();
  let issued = 0;
  let faultDone: Promise<void> = Promise.resolve();
  let faultStarted = false;

  const triggerFault = () => {
    faultStarted = true;
    for (const c of ledger.calls) if (c.state === 'pending') c.inFlightAtFault = true;
    ledger.faultAtMs = Date.now();
    faultDone = opts.fault.run().then(() => {
      ledger.faultEndMs = Date.now();
    });
    // Surface a failed restart at the end, not as an unhandled rejection now.
    faultDone.catch(() => {});
  };

  /** The call number reserved by the client's current step (exactly one mutating call per step). */
  const reserved = new Map<number, number>();

  async function call(client: number, method: OpName, vm: string, args: Record<string, unknown>, before?: () => void): Promise<CallRecord> {
    const n = reserved.get(client)!;
    if (n === opts.faultAt && !faultStarted) triggerFault();
    const rec: CallRecord = { n, client, method, vm, state: 'pending', inFlightAtFault: false };
    ledger.calls.push(rec);
    before?.();
    // Longer than the gateway's own wait for an agent (10 s), so its answer (not ours) ends a call.
    const o = await rpc(opts.url(), method, args, 40_000);
    if (o.kind === 'ok') {
      if (ledger.faultEndMs !== undefined && ledger.firstAckAfterFaultMs === undefined) ledger.firstAckAfterFaultMs = Date.now();
      ledger.ackTimes.push(Date.now());
      rec.state = 'ok';
      rec.value = o.value;
    } else if (o.kind === 'error') {
      rec.state = 'error';
      rec.error = o.error;
    } else {
      rec.state = 'transport';
      rec.error = o.message;
    }
    return rec;
  }

  async function powerOf(vm: string): Promise<string | undefined> {
    const o = await rpc(opts.url(), 'VM.stat', { id: vm }, 5_000);
    if (o.kind !== 'ok') return undefined;
    return (o.value as [unknown, { power_state: string }])[1].power_state;
  }

  async function waitTaskEnd(task: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delay = 5;
    while (Date.now() < deadline) {
      const o = await rpc(opts.url(), 'Task.stat', { id: task }, 5_000);
      if (o.kind !== 'ok') return;
      if ((o.value as XenopsdTask).state[0] !== 'Pending') return;
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  async function clientLoop(ci: number): Promise<void> {
    const rnd = prng((opts.seed ^ Math.imul(ci + 1, 0x9e3779b1)) >>> 0);
    const mine: string[] = [];
    const myTasks: string[] = [];
    const vifPositions = new Map<string, number>();
    let devCounter = 0;

    const addVm = async () => {
      const id = vmId(`c${ci}`);
      const led: VmLedger = { addAcked: false, removeMaybe: false, removeAcked: false, devices: [] };
      ledger.vms.set(id, led);
      const r = await call(ci, 'VM.add', id, { vm: xenopsdVm(id, { name: `crash-${ci}` }) });
      if (r.state === 'ok') {
        led.addAcked = true;
        mine.push(id);
      }
      return r;
    };

    while (issued < total) {
      reserved.set(ci, ++issued);
      let r: CallRecord;
      if (mine.length === 0) {
        r = await addVm();
      } else {
        const vm = mine[Math.floor(rnd() * mine.length)]!;
        const led = ledger.vms.get(vm)!;
        const ps = rnd() < 0.1 ? undefined : await powerOf(vm);
        const weights: Partial<Record<OpName, number>> = {
          'VM.add': mine.length < maxVms ? 1.2 : 0,
          'Task.destroy': myTasks.length > 0 ? 0.8 : 0,
        };
        switch (ps) {
          case 'Halted':
            Object.assign(weights, { 'VM.start': 5, 'VBD.add': 1.5, 'VIF.add': 1.5, 'VM.remove': 0.6, 'VM.shutdown': 0.3 });
            break;
          case 'Paused':
            Object.assign(weights, { 'VM.unpause': 4, 'VM.shutdown': 1.2, 'VM.reboot': 1, 'VM.suspend': 1.5, 'VM.pause': 0.3 });
            break;
          case 'Running':
            Object.assign(weights, { 'VM.pause': 3, 'VM.shutdown': 1.2, 'VM.reboot': 1.5, 'VM.suspend': 1.5 });
            break;
          case 'Suspended':
            Object.assign(weights, { 'VM.resume': 4, 'VM.shutdown': 1, 'VM.remove': 0.5 });
            break;
          default:
            // Unknown (outage, or deliberately blind): anything, illegal ones included.
            Object.assign(weights, {
              'VM.start': 1,
              'VM.unpause': 1,
              'VM.pause': 1,
              'VM.shutdown': 1,
              'VM.reboot': 1,
              'VM.suspend': 1,
              'VM.resume': 1,
              'VBD.add': 0.5,
              'VIF.add': 0.5,
              'VM.remove': 0.3,
            });
        }
        const op = pickWeighted(rnd, weights);
        const disk = ['VDI', `vdi-suspend-${vm}`];
        switch (op) {
          case 'VM.add':
            r = await addVm();
            break;
          case 'Task.destroy': {
            const i = Math.floor(rnd() * myTasks.length);
            const task = myTasks[i]!;
            myTasks.splice(i, 1);
            const tl = ledger.tasks.get(task)!;
            r = await call(ci, 'Task.destroy', tl.vm, { id: task }, () => (tl.destroyMaybe = true));
            if (r.state === 'ok') tl.destroyAcked = true;
            else if (r.state === 'error' && isDefinitiveRefusal(r.error)) tl.destroyMaybe = false;
            break;
          }
          case 'VM.remove': {
            r = await call(ci, 'VM.remove', vm, { id: vm }, () => (led.removeMaybe = true));
            if (r.state === 'ok') led.removeAcked = true;
            else if (r.state === 'error' && isDefinitiveRefusal(r.error)) led.removeMaybe = false;
            if (led.removeMaybe) mine.splice(mine.indexOf(vm), 1);
            break;
          }
          case 'VBD.add': {
            const dev = `xvd${String.fromCharCode(97 + (devCounter++ % 26))}${devCounter}`;
            r = await call(ci, 'VBD.add', vm, { vbd: { id: [vm, dev], backend: ['VDI', `vdi-${dev}`] } });
            if (r.state === 'ok') led.devices.push({ kind: 'VBD', dev });
            break;
          }
          case 'VIF.add': {
            const pos = vifPositions.get(vm) ?? 0;
            vifPositions.set(vm, pos + 1);
            const dev = `vif${pos}`;
            r = await call(ci, 'VIF.add', vm, { vif: { id: [vm, dev], position: pos, mac: '' } });
            if (r.state === 'ok') led.devices.push({ kind: 'VIF', dev });
            break;
          }
          default: {
            const args: Record<string, unknown> = { id: vm };
            if (op === 'VM.start') args.paused = false;
            if (op === 'VM.suspend' || op === 'VM.resume') args.suspend_vdi = disk;
            if ((op === 'VM.shutdown' || op === 'VM.reboot') && rnd() < 0.3) args.delay = 1;
            r = await call(ci, op, vm, args);
            if (r.state === 'ok') {
              const task = r.value as string;
              ledger.tasks.set(task, { id: task, vm, method: op, destroyMaybe: false, destroyAcked: false });
              myTasks.push(task);
              // Mostly wait for the task (so the next choice sees the new state); sometimes queue on.
              if (rnd() < 0.6) await waitTaskEnd(task);
            }
          }
        }
      }
      if (r.state === 'transport') await sleep(300 + rnd() * 200);
    }
  }

  // CRASH_DEBUG=1: one progress line per second on stderr.
  const t0 = Date.now();
  const ticker = process.env.CRASH_DEBUG
    ? setInterval(() => {
        const pend = ledger.calls.filter((c) => c.state === 'pending');
        process.stderr.write(
          `crash-driver +${((Date.now() - t0) / 1000).toFixed(1)}s issued=${issued} ok=${ledger.acknowledged} transport=${ledger.transportErrors}` +
            ` pending=${pend.length} [${pend.slice(0, 4).map((c) => c.method).join(',')}]\n`,
        );
      }, 1000)
    : undefined;
  try {
    await Promise.all(Array.from({ length: nClients }, (_, i) => clientLoop(i)));
  } finally {
    if (ticker) clearInterval(ticker);
  }
  return { ledger, faultDone };
}

// ---------------------------------------------------------------------------------------------
// Checks

type Stat = [{ id: string }, { power_state: string }];

async function must(url: string | undefined, method: string, args: Record<string, unknown>, timeoutMs = 20_000): Promise<unknown> {
  const o = await rpc(url, method, args, timeoutMs);
  if (o.kind === 'ok') return o.value;
  throw new Error(`${method} ${JSON.stringify(args)} failed: ${o.kind === 'error' ? JSON.stringify(o.error) : o.message}`);
}

/** Polls Task.list until no task is Pending; throws with the stragglers after `timeoutMs`. */
/** Waits until `GET /healthz` answers 200 (the store can take a write). */
export async function waitHealthy(url: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const base = url();
    if (base) {
      try {
        const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) });
        if (res.status === 200) return;
        last = `${res.status} ${await res.text()}`;
      } catch (e) {
        last = (e as Error).message;
      }
    }
    if (Date.now() > deadline) throw new Error(`the service did not become healthy within ${timeoutMs} ms (last: ${last})`);
    await sleep(100);
  }
}

export async function waitAllTasksEnded(url: () => string | undefined, timeoutMs: number, ledger?: Ledger): Promise<XenopsdTask[]> {
  const deadline = Date.now() + timeoutMs;
  let last: XenopsdTask[] = [];
  let lastErr = '';
  for (;;) {
    const o = await rpc(url(), 'Task.list', {}, 10_000);
    if (o.kind === 'ok') {
      last = o.value as XenopsdTask[];
      if (last.every((t) => t.state[0] !== 'Pending')) return last;
    } else lastErr = o.kind === 'error' ? JSON.stringify(o.error) : o.message;
    if (Date.now() > deadline) {
      const pending = last.filter((t) => t.state[0] === 'Pending');
      throw new Error(
        `${pending.length} task(s) still Pending after ${timeoutMs} ms (last error: ${lastErr || 'none'}): ` +
          JSON.stringify(
            pending.slice(0, 8).map((t) => {
              const tl = ledger?.tasks.get(t.id);
              // returnedToClient: false means an orphan (its call failed or was cut off mid-flight).
              return { id: t.id, dbg: t.dbg, state: t.state, returnedToClient: tl !== undefined, method: tl?.method, vm: tl?.vm };
            }),
          ),
      );
    }
    await sleep(100);
  }
}

export interface CheckReport {
  lost: string[];
  stuck: string[];
  verify: { ok: boolean; differences: string[]; seq: number } & Record<string, unknown>;
  /** The replay was compared at the head (nothing was appended while /verify ran). */
  compared: boolean;
  vmsChecked: number;
  tasksChecked: number;
}

/**
 * After the fault and the driver are done: every acknowledged call is reflected, every task has
 * ended, every VM's queue still moves, and the log replays to the live read model.
 */
export async function checkAfterFault(url: () => string | undefined, ledger: Ledger, opts: { taskTimeoutMs?: number } = {}): Promise<CheckReport> {
  const lost: string[] = [];
  const stuck: string[] = [];
  // Calls fail fast while the store is unreachable: the checks start once the service says it can
  // take writes again (how fast it gets there is the fault suite's measure, not this check's).
  await waitHealthy(url, opts.taskTimeoutMs ?? 45_000);
  const tasks = await waitAllTasksEnded(url, opts.taskTimeoutMs ?? 45_000, ledger);
  const taskIds = new Map(tasks.map((t) => [t.id, t]));
  const vms = (await must(url(), 'VM.list', {})) as Stat[];
  const vmIds = new Set(vms.map(([v]) => v.id));

  // 1. Acknowledged VMs and devices.
  for (const [id, led] of ledger.vms) {
    if (led.removeAcked) {
      if (vmIds.has(id)) lost.push(`VM ${id}: VM.remove was acknowledged but the VM still exists`);
      continue;
    }
    if (!led.addAcked || led.removeMaybe) continue;
    if (!vmIds.has(id)) {
      // Tell a read-model bug (the log has it) from a lost write (the log does not).
      const base = url();
      const logged = base ? await fetch(`${base}/log?vm=${encodeURIComponent(id)}`).then((r) => r.text()).catch((e: Error) => `(log unavailable: ${e.message})`) : '';
      lost.push(`VM ${id}: VM.add was acknowledged but the VM is missing; its audit log: ${logged.trim().split('\n').map((l) => l.slice(0, 160)).join(' | ') || '(empty)'}`);
      continue;
    }
    for (const kind of ['VBD', 'VIF'] as const) {
      const want = led.devices.filter((d) => d.kind === kind).map((d) => d.dev);
      if (want.length === 0) continue;
      const have = new Set(((await must(url(), `${kind}.list`, { id })) as [{ id: [string, string] }, unknown][]).map(([c]) => c.id[1]));
      for (const d of want) if (!have.has(d)) lost.push(`${kind} ${id}/${d}: ${kind}.add was acknowledged but the device is missing`);
    }
  }

  // 2. Every returned task id is present (unless we destroyed it) and ended.
  let tasksChecked = 0;
  for (const [id, tl] of ledger.tasks) {
    tasksChecked++;
    const t = taskIds.get(id);
    if (tl.destroyAcked) {
      if (t) lost.push(`task ${id} (${tl.method}): Task.destroy was acknowledged but the task is listed`);
      continue;
    }
    if (!t) {
      if (!tl.destroyMaybe) lost.push(`task ${id} (${tl.method} ${tl.vm}): returned to a client, never destroyed, missing from Task.list`);
      continue;
    }
    if (t.state[0] !== 'Completed' && t.state[0] !== 'Failed') lost.push(`task ${id}: not ended: ${JSON.stringify(t.state)}`);
  }

  // 3. No VM is stuck: a fresh operation on each one completes, or fails with a power-state error.
  const queueOk = (t: XenopsdTask) =>
    t.state[0] === 'Completed' ||
    (t.state[0] === 'Failed' && Array.isArray(t.state[1]) && ['Bad_power_state', 'Domain_not_built'].includes((t.state[1] as unknown[])[0] as string));
  const probes: string[] = [];
  await Promise.all(
    vms.map(async ([v, st]) => {
      const method = st.power_state === 'Running' ? 'VM.pause' : st.power_state === 'Paused' ? 'VM.unpause' : 'VM.shutdown';
      // The agent's own connection may come back a moment after the gateway's: a refusal that says
      // so is asked again, for a few seconds.
      const transient = /is unreachable|no agent for host|did not answer/;
      const until = Date.now() + 10_000;
      let o = await rpc(url(), method, { id: v.id });
      while (o.kind !== 'ok' && Date.now() < until && transient.test(JSON.stringify(o.kind === 'error' ? o.error : o.message))) {
        await sleep(200);
        o = await rpc(url(), method, { id: v.id });
      }
      if (o.kind !== 'ok') {
        stuck.push(`VM ${v.id} (${st.power_state}): ${method} refused: ${JSON.stringify(o.kind === 'error' ? o.error : o.message)}`);
        return;
      }
      probes.push(o.value as string);
      const deadline = Date.now() + 20_000;
      for (;;) {
        const s = await rpc(url(), 'Task.stat', { id: o.value });
        const t = s.kind === 'ok' ? (s.value as XenopsdTask) : undefined;
        if (t && t.state[0] !== 'Pending') {
          if (!queueOk(t)) stuck.push(`VM ${v.id} (${st.power_state}): ${method} task ${t.id} ended ${JSON.stringify(t.state)}`);
          break;
        }
        if (Date.now() > deadline) {
          stuck.push(`VM ${v.id} (${st.power_state}): ${method} task ${String(o.value)} still not ended after 20 s: ${JSON.stringify(t ?? s)}`);
          break;
        }
        await sleep(25);
      }
    }),
  );
  await waitAllTasksEnded(url, 20_000, ledger);

  // 4. The log replays to the live read model. The service compares only when nothing was
  // appended during the replay, so the head must not move around the call.
  const headBefore = (await must(url(), 'UPDATES.last_id', {})) as number;
  const reply = await httpRequest({ url: url() }, { method: 'GET', path: '/verify', timeoutMs: 60_000 });
  if (reply.status !== 200) throw new Error(`GET /verify: HTTP ${reply.status}: ${reply.body}`);
  const verify = JSON.parse(reply.body) as CheckReport['verify'];
  const headAfter = (await must(url(), 'UPDATES.last_id', {})) as number;
  const compared = headBefore === headAfter && verify.seq === headAfter;
  return { lost, stuck, verify, compared, vmsChecked: vms.length, tasksChecked };
}
