/**
 * Helpers for the lifecycle-operation suites (lifecycle-ops, guest-actions, cancellation,
 * crash-agent): a store-independent service handle that survives restarts of the engine process,
 * a per-dialect adapter (method names, argument keys, debug key, how a task's outcome reads) and
 * small polling utilities.
 */
import { expect } from 'vitest';
import { encodeXmlRpcCall } from './xmlrpc.js';
import { RpcClient, S, X, type Codec, type Dialect, type SeedTask, type XenopsdTask } from './rpc.js';
import { seedVm, vmId, xenopsdVm } from './vms.js';
import { respawn, spawnXenopsd, startNatsCluster, type NatsCluster, type Xenopsd } from './xenopsd.js';

export type Store = 'embedded' | 'nats';
export type VmState = { power_state: string; domids: number[] } & Record<string, unknown>;
export type Stat = [Record<string, unknown>, VmState];

/** A running service: embedded (one process) or NATS (agent + gateway processes). */
export interface Service {
  /** Base URL of the gateway (for GET /log and friends). */
  url(): string;
  readonly store: Store;
  /** A client on the current gateway (the port changes when the embedded process restarts). */
  client(codec?: Codec): RpcClient;
  /** SIGKILL the process that executes tasks (embedded: the only one; NATS: the agent). */
  killEngine(): Promise<void>;
  /** Start the killed engine process again on the same state. */
  restartEngine(): Promise<void>;
}

export async function startService(store: Store, opts: { poolSize?: number } = {}): Promise<Service> {
  const extra = opts.poolSize === undefined ? [] : ['--pool-size', String(opts.poolSize)];
  if (store === 'embedded') {
    let proc: Xenopsd = await spawnXenopsd({ mode: 'embedded', extraArgs: extra });
    return {
      store,
      client: (codec: Codec = 'json1') => proc.client(codec),
      url: () => proc.url!, // spawned with an HTTP listener
      killEngine: () => proc.kill9(),
      async restartEngine() {
        proc = await respawn(proc);
      },
    };
  }
  const cluster: NatsCluster = await startNatsCluster({ agentArgs: extra });
  return {
    store,
    client: (codec: Codec = 'json1') => cluster.client(codec),
    url: () => cluster.gateway.url!, // spawned with an HTTP listener
    killEngine: () => cluster.agent.kill9(),
    async restartEngine() {
      cluster.agent = await respawn(cluster.agent);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Dialects

/** The outcome of a task, the same shape for both dialects (the seed's JSON text is parsed). */
export type TaskEnd = { state: 'Completed'; duration: number; result?: unknown } | { state: 'Failed'; error: unknown };

/** Arguments of the operations both dialects have, in dialect-neutral form. */
export type Op =
  | { op: 'start' }
  | { op: 'shutdown'; timeout?: number }
  | { op: 'reboot'; timeout?: number }
  | { op: 'suspend'; disk: [string, string] }
  | { op: 'resume'; disk: [string, string] }
  | { op: 'create' | 'build' | 'destroy' | 'pause' | 'unpause' | 's3suspend' | 's3resume' }
  | { op: 'create_device_model'; saveState: boolean }
  | { op: 'set_vcpus'; n: number }
  | { op: 'set_shadow_multiplier'; m: number };

export interface DialectOps {
  readonly name: Dialect;
  /** Adds the dialect's debug key. */
  args(a?: Record<string, unknown>, dbg?: string): Record<string, unknown>;
  /** A fresh VM configuration in this dialect's shape. */
  vmConfig(id?: string, overrides?: Record<string, unknown>): Record<string, unknown>;
  /** `VM.add` / `Vm.add`; returns the id. */
  add(c: RpcClient, overrides?: Record<string, unknown>, id?: string): Promise<string>;
  /** Submits an operation; returns the task id (fails the test if the call fails). */
  submit(c: RpcClient, id: string, op: Op, dbg?: string): Promise<string>;
  /** The call's raw outcome (for errors of the call itself). */
  submitRaw(c: RpcClient, id: string, op: Op, dbg?: string): ReturnType<RpcClient['named']>;
  /** Polls the task in this dialect until it ends. */
  wait(c: RpcClient, task: string, timeoutMs?: number): Promise<TaskEnd>;
  /** submit + wait. */
  run(c: RpcClient, id: string, op: Op, dbg?: string, timeoutMs?: number): Promise<TaskEnd>;
  /** Power state a start / resume leaves. */
  readonly startEnds: 'Paused' | 'Running';
  /** The vCPU error for `max`. */
  vcpusError(max: number): unknown;
  /** `Already_exists (kind, key)` as this dialect shows it. */
  alreadyExists(kind: string, key: string): unknown;
}

function methodAndArgs(dialect: Dialect, op: Op): [string, Record<string, unknown>] {
  const seed = dialect === 'seed';
  const m = (n: string) => `${seed ? 'Vm' : 'VM'}.${n}`;
  switch (op.op) {
    case 'start':
      return [m('start'), seed ? {} : { paused: false }];
    case 'shutdown':
    case 'reboot':
      return [m(op.op), op.timeout === undefined ? {} : { [seed ? 'clean_shutdown_timeout' : 'delay']: op.timeout }];
    case 'suspend':
    case 'resume':
      return [m(op.op), { [seed ? 'disk' : 'suspend_vdi']: op.disk }];
    case 'build':
      return [m('build'), seed ? {} : { force: false }];
    case 'create_device_model':
      return [m('create_device_model'), { [seed ? 'is_resuming' : 'save_state']: op.saveState }];
    case 'set_vcpus':
      return [m('set_vcpus'), { [seed ? 'num_vpcus' : 'vcpus']: op.n }];
    case 'set_shadow_multiplier':
      return [m('set_shadow_multiplier'), { [seed ? 'shadow_multiplier' : 'multiplier']: op.m }];
    default:
      return [m(op.op), {}];
  }
}

/** Reads a final task of either dialect into a TaskEnd; checks the seed's compact JSON text. */
export function taskEnd(dialect: Dialect, t: XenopsdTask | SeedTask): TaskEnd {
  if (dialect === 'xenopsd') {
    const [tag, v] = (t as XenopsdTask).state;
    if (tag === 'Completed') return { state: 'Completed', ...(v as { duration: number; result?: unknown }) };
    if (tag === 'Failed') return { state: 'Failed', error: v };
    throw new Error(`task ${t.id} not finished: ${JSON.stringify(t)}`);
  }
  const [tag, v] = (t as SeedTask).result;
  if (tag === 'Completed') {
    expect(typeof v, `seed Completed carries the duration: ${JSON.stringify(t)}`).toBe('number');
    return { state: 'Completed', duration: v as number };
  }
  if (tag === 'Failed') {
    expect(typeof v, `seed Failed carries JSON text: ${JSON.stringify(t)}`).toBe('string');
    const parsed = JSON.parse(v as string) as unknown;
    // Compact, as JSON.stringify prints it (§4.12).
    expect(v).toBe(JSON.stringify(parsed));
    return { state: 'Failed', error: parsed };
  }
  throw new Error(`task ${t.id} not finished: ${JSON.stringify(t)}`);
}

export async function waitEnd(c: RpcClient, dialect: Dialect, task: string, timeoutMs = 20_000): Promise<TaskEnd> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const t = await c.ok<XenopsdTask & SeedTask>('Task.stat', dialect === 'seed' ? S({ id: task }) : X({ id: task }));
    const tag = dialect === 'seed' ? t.result?.[0] : t.state?.[0];
    if (tag !== 'Pending') return taskEnd(dialect, t);
    if (Date.now() > deadline) throw new Error(`task ${task} still Pending after ${timeoutMs} ms: ${JSON.stringify(t)}`);
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

function makeDialect(name: Dialect): DialectOps {
  const seed = name === 'seed';
  const self: DialectOps = {
    name,
    args: (a = {}, dbg = 'e2e') => (seed ? S(a, dbg) : X(a, dbg)),
    vmConfig: (id, overrides = {}) => (seed ? seedVm(id ?? vmId('seed'), overrides) : xenopsdVm(id ?? vmId('x'), overrides)),
    async add(c, overrides = {}, id) {
      const cfg = self.vmConfig(id, overrides);
      return c.ok<string>(seed ? 'Vm.add' : 'VM.add', seed ? S({ t: cfg }) : X({ vm: cfg }));
    },
    submitRaw(c, id, op, dbg) {
      const [m, a] = methodAndArgs(name, op);
      return c.named(m, self.args({ id, ...a }, dbg));
    },
    async submit(c, id, op, dbg) {
      const [m, a] = methodAndArgs(name, op);
      return c.ok<string>(m, self.args({ id, ...a }, dbg));
    },
    wait: (c, task, timeoutMs) => waitEnd(c, name, task, timeoutMs),
    async run(c, id, op, dbg, timeoutMs) {
      return self.wait(c, await self.submit(c, id, op, dbg), timeoutMs);
    },
    startEnds: seed ? 'Running' : 'Paused',
    vcpusError: (max) => [seed ? 'Maximum_vcpus' : 'Invalid_vcpus', max],
    alreadyExists: (kind, key) => (seed ? 'Already_exists' : ['Already_exists', [kind, key]]),
  };
  return self;
}

export const XENOPSD = makeDialect('xenopsd');
export const SEED = makeDialect('seed');
export const DIALECTS = [XENOPSD, SEED] as const;

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const dne = (kind: string, key: string) => ['Does_not_exist', [kind, key]];
export const dneVm = (vm: string) => dne('VM', `${vm}/config`);
export const dneDom = (vm: string) => dne('domain', vm);
export const bps = (actual: string, expected: string) => ['Bad_power_state', [actual, expected]];
export const completed = { state: 'Completed', duration: expect.any(Number) };

export async function stat(c: RpcClient, id: string): Promise<Stat> {
  return c.ok<Stat>('VM.stat', X({ id }));
}
export async function power(c: RpcClient, id: string): Promise<string> {
  return (await stat(c, id))[1].power_state;
}

/** Polls until `pred` holds for the VM's state (or the VM's absence, `undefined`). */
export async function waitVm(
  c: RpcClient,
  id: string,
  pred: (s: Stat | undefined) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Stat | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const o = await c.named('VM.stat', X({ id }));
    const s = o.ok ? (o.value as Stat) : undefined;
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`VM ${id}: never ${what} within ${timeoutMs} ms; last ${JSON.stringify(s?.[1] ?? o)}`);
    await sleep(25);
  }
}

/** Polls `Task.stat` (xenopsd) until `pred` holds on the task record. */
export async function waitTaskWhere(c: RpcClient, id: string, pred: (t: XenopsdTask) => boolean, what: string, timeoutMs = 10_000): Promise<XenopsdTask> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await c.ok<XenopsdTask>('Task.stat', X({ id }));
    if (pred(t)) return t;
    if (Date.now() > deadline) throw new Error(`task ${id}: never ${what} within ${timeoutMs} ms; last ${JSON.stringify(t)}`);
    await sleep(20);
  }
}

/** A raw XML-RPC call: the response body text (to look at the exact encoding, e.g. `<double>`). */
export async function rawXml(c: RpcClient, method: string, params: unknown[]): Promise<string> {
  const reply = await c.raw(encodeXmlRpcCall(method, params), { headers: { 'Content-Type': 'text/xml' } });
  expect(reply.status).toBe(200);
  return reply.body;
}

/** Adds a xenopsd VM and starts it; with `running` also unpauses it. */
export async function addStarted(c: RpcClient, d: DialectOps, overrides: Record<string, unknown> = {}, running = true): Promise<string> {
  const id = await d.add(c, overrides);
  expect(await d.run(c, id, { op: 'start' })).toEqual(completed);
  if (running && d.name === 'xenopsd') expect(await d.run(c, id, { op: 'unpause' })).toEqual(completed);
  await waitVm(c, id, (s) => s?.[1].power_state === (running ? 'Running' : d.startEnds), running ? 'Running' : d.startEnds);
  return id;
}
