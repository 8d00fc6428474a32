import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  emptyVm,
  evolveTask,
  evolveVm,
  readMessage,
  taskIdOf,
  VmT,
  withCheckedAppends,
  type Effect,
  type Observation,
  type Stores,
  type Subscription,
  type TaskRecord,
  type VmAggregate,
  type VmConfig,
} from '@xenops/core';
import { openEmbeddedStores } from '@xenops/store-sqlite';
import type { Backend, BackendCapabilities, EffectContext } from '../backend/backend.js';
import { SimulatorBackend } from '../backend/simulator/simulator.js';

/** A minimal valid HVM configuration (API.md §10's example). */
export function vmConfig(id: string, overrides: Partial<VmConfig> = {}): VmConfig {
  const base = VmT.decode(
    {
      id,
      name: id,
      ssidref: 0,
      xsdata: {},
      platformdata: {},
      bios_strings: {},
      ty: ['HVM', {}],
      suppress_spurious_page_faults: false,
      memory_static_max: 1073741824,
      memory_dynamic_max: 1073741824,
      memory_dynamic_min: 536870912,
      vcpu_max: 2,
      vcpus: 2,
      scheduler_params: { affinity: [] },
      on_crash: ['Shutdown'],
      on_shutdown: ['Shutdown'],
      on_reboot: ['Start'],
      pci_msitranslate: true,
      pci_power_mgmt: false,
    },
    'vm',
  );
  return { ...base, ...overrides };
}

/**
 * The simulator behind other capabilities (and no DEBUG.trigger hooks), its effects optionally
 * intercepted: `perform` gets each effect and the simulator's own way of performing it.
 */
export function simulatorAs(
  name: string,
  capabilities: BackendCapabilities,
  perform?: (effect: Effect, ctx: EffectContext, simulate: () => Promise<Observation>) => Promise<Observation>,
): Backend {
  const sim = new SimulatorBackend();
  return {
    name,
    capabilities,
    start: (host) => sim.start(host),
    close: () => sim.close(),
    perform: (effect, ctx) => (perform ? perform(effect, ctx, () => sim.perform(effect, ctx)) : sim.perform(effect, ctx)),
    domains: () => sim.domains(),
    hostFacts: () => sim.hostFacts(),
    onDomainEvent: (listener) => sim.onDomainEvent(listener),
  };
}

/** Embedded stores in a fresh temp dir, plus a live fold of the log for assertions. */
export async function openTestStores(): Promise<{
  stores: Stores;
  view: LogView;
  dispose: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'xenops-actors-'));
  // As in the daemon: every event the actors write must read back to itself.
  const stores = withCheckedAppends(await openEmbeddedStores({ dataDir: dir }));
  const view = new LogView(stores);
  return {
    stores,
    view,
    dispose: async () => {
      await view.close();
      await stores.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Folds the log as it grows: every VM and every task, for tests to wait on. */
export class LogView {
  readonly vms = new Map<string, VmAggregate>();
  readonly tasks = new Map<string, TaskRecord>();
  /** Tasks in the order they ended, with the seq that ended them. */
  readonly ended: Array<{ id: string; seq: number }> = [];
  private readonly sub: Subscription;
  private listeners = new Set<() => void>();

  constructor(stores: Stores) {
    this.sub = stores.log.tail(0, (m) => {
      // A damaged message (tests of a damaged log) is no event: the view folds around it.
      for (const event of readMessage(m).events ?? []) {
        if (m.stream.startsWith('vm/')) {
          const id = m.stream.slice(3);
          this.vms.set(id, evolveVm(this.vms.get(id) ?? emptyVm(id), event));
        }
        const taskId = taskIdOf(event);
        if (taskId !== undefined) {
          const next = evolveTask(this.tasks.get(taskId), event);
          if (next) {
            if (next.status !== 'pending' && this.tasks.get(taskId)?.status === 'pending') this.ended.push({ id: taskId, seq: m.seq });
            this.tasks.set(taskId, next);
          } else this.tasks.delete(taskId);
        }
      }
      for (const l of this.listeners) l();
    });
  }

  until<T>(probe: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v !== undefined && v !== false) {
          this.listeners.delete(check);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error('condition not reached in time'));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  taskEnded(id: string, timeoutMs?: number): Promise<TaskRecord> {
    return this.until(() => {
      const t = this.tasks.get(id);
      return t && t.status !== 'pending' ? t : undefined;
    }, timeoutMs);
  }

  close(): Promise<void> {
    return this.sub.close();
  }
}
