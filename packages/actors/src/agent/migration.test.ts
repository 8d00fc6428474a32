/**
 * A migration between two agents on one store and one in-process bus (API.md §7.8): one writer
 * per stream across the switch-over, the power state kept, and no cancel honoured once the
 * destination has the task (it is past its point of no return).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeBatch, Streams, type CommandReply, type Effect, type Observation, type Operation, type Stores } from '@xenops/core';
import type { EffectContext } from '../backend/backend.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QemuBackend } from '../backend/qemu/qemu-backend.js';
import { SimulatorBackend } from '../backend/simulator/simulator.js';
import { LogView, openTestStores, vmConfig } from '../testing/fixtures.js';
import { HostAgent } from './host-agent.js';

/** A simulator whose destination part of a migration waits for the test to let it go on. */
class GatedSimulator extends SimulatorBackend {
  private release?: () => void;
  private onReach: () => void = () => {};
  readonly reached = new Promise<void>((resolve) => (this.onReach = resolve));
  override async perform(effect: Effect, ctx: EffectContext): Promise<Observation> {
    if (effect.kind === 'VM_migrate_receive') {
      this.onReach();
      await new Promise<void>((resolve) => (this.release = resolve));
    }
    return super.perform(effect, ctx);
  }
  open(): void {
    this.release?.();
  }
}

describe('a migration between two agents', () => {
  let stores: Stores;
  let view: LogView;
  let dispose: () => Promise<void>;
  let h1: HostAgent;
  let h2: HostAgent;
  let gate: GatedSimulator;

  beforeEach(async () => {
    ({ stores, view, dispose } = await openTestStores());
    gate = new GatedSimulator();
    h1 = await HostAgent.start({ stores, hostId: 'h1', idleActorSleepMs: 20 });
    h2 = await HostAgent.start({ stores, hostId: 'h2', idleActorSleepMs: 20, backend: gate });
  });
  afterEach(async () => {
    gate.open();
    await h1.close();
    await h2.close();
    await dispose();
  });

  const ok = (r: CommandReply) => {
    if (!r.ok) throw new Error(`command failed: ${JSON.stringify(r.error)}`);
    return r.value as string;
  };
  const submit = (agent: HostAgent, vmId: string, operation: Operation) => agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId, operation } });
  const migrate: Operation = { kind: 'VM.migrate', url: 'xenops://h2', destination: 'h2', vdiMap: [], vifMapJson: '{}', pciMapJson: '{}' };

  it('one writer per stream across the switch-over; a cancel sent to the destination is ignored; the VM runs on h2', async () => {
    ok(await h1.execute({ dbg: 't', command: { type: 'AddVm', config: vmConfig('v'), refuseExisting: false } }));
    expect((await view.taskEnded(ok(await submit(h1, 'v', { kind: 'VM.start', paused: false, unpause: true })))).status).toBe('completed');
    const task = ok(await submit(h1, 'v', migrate));
    await gate.reached;
    // The destination has the task: past the point of no return, a cancel changes nothing.
    const cancel = await h2.execute({ dbg: 't', command: { type: 'CancelTask', vmId: 'v', taskId: task } });
    expect(cancel.ok).toBe(true);
    gate.open();
    expect(await view.taskEnded(task)).toMatchObject({ status: 'completed', progress: 1 });
    const vm = view.vms.get('v')!;
    expect([vm.owner, vm.domain?.host, vm.domain?.paused]).toEqual(['h2', 'h2', false]);

    // Every message after the switch-over is the destination's.
    const writers: Array<[string, string]> = [];
    for await (const m of stores.log.readStream(Streams.vm('v'), 0)) for (const e of decodeBatch(m.seq, m.data)) writers.push([e.body.type, e.audit.host]);
    const switchOver = writers.findIndex(([type], i) => type === 'VmOwnerChanged' && i > 0 && writers[i - 1]![0] !== 'VmAdded');
    expect(switchOver).toBeGreaterThan(0);
    expect(writers[switchOver]).toEqual(['VmOwnerChanged', 'h1']);
    expect(new Set(writers.slice(switchOver + 1).map(([, host]) => host))).toEqual(new Set(['h2']));
    expect(writers.slice(0, switchOver).every(([, host]) => host === 'h1')).toBe(true);
  });

  it('to a host whose backend cannot take the state (QEMU), the destination refuses before the point of no return: the VM runs on at its source', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xenops-mig-'));
    const h3 = await HostAgent.start({ stores, hostId: 'h3', backend: new QemuBackend(), dataDir });
    try {
      ok(await h1.execute({ dbg: 't', command: { type: 'AddVm', config: vmConfig('w'), refuseExisting: false } }));
      expect((await view.taskEnded(ok(await submit(h1, 'w', { kind: 'VM.start', paused: false, unpause: true })))).status).toBe('completed');
      const domid = view.vms.get('w')!.domain!.domid;
      const task = ok(await submit(h1, 'w', { ...migrate, url: 'xenops://h3', destination: 'h3' }));
      expect(await view.taskEnded(task)).toMatchObject({
        status: 'failed',
        error: ['Internal_error', "host h3 runs the qemu backend: it cannot take a simulated domain's state"],
      });
      const vm = view.vms.get('w')!;
      expect([vm.owner, vm.domain?.host, vm.domain?.domid, vm.domain?.paused]).toEqual(['h1', 'h1', domid, false]);
    } finally {
      await h3.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
