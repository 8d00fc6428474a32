/**
 * Ownership is a fact of the log (ARCHITECTURE.md "One writer per stream"): two agents of
 * different hosts on one store and one in-process bus. An agent refuses a command for a VM
 * another host owns, with a typed error naming the owner; a free VM is claimed by exactly one of
 * two agents racing for it; a VM that is free again may be claimed by the other host.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ANY_AGENT, decodeBatch, decodeReply, encodeCommand, ownerOf, Streams, type CommandReply, type Operation, type Stores } from '@xenops/core';
import { LogView, openTestStores, vmConfig } from '../testing/fixtures.js';
import { HostAgent } from './host-agent.js';

describe('ownership between two agents on one store', () => {
  let stores: Stores;
  let view: LogView;
  let dispose: () => Promise<void>;
  let h1: HostAgent;
  let h2: HostAgent;

  beforeEach(async () => {
    ({ stores, view, dispose } = await openTestStores());
    h1 = await HostAgent.start({ stores, hostId: 'h1', idleActorSleepMs: 20 });
    h2 = await HostAgent.start({ stores, hostId: 'h2', idleActorSleepMs: 20 });
  });
  afterEach(async () => {
    await h1.close();
    await h2.close();
    await dispose();
  });

  const ok = (r: CommandReply) => {
    if (!r.ok) throw new Error(`command failed: ${JSON.stringify(r.error)}`);
    return r.value;
  };
  const add = (agent: HostAgent, id: string) => agent.execute({ dbg: 't', command: { type: 'AddVm', config: vmConfig(id), refuseExisting: false } });
  const submit = (agent: HostAgent, vmId: string, operation: Operation) => agent.execute({ dbg: 't', command: { type: 'SubmitOperation', vmId, operation } });
  const start = { kind: 'VM.start', paused: false, unpause: false } as const;
  const notOwner = (vm: string, owner: string, me: string) => ['Internal_error', `VM ${vm} is owned by host ${owner}; this is host ${me}`];

  /** The events of the VM's stream, with the host that wrote each. */
  async function writers(vmId: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for await (const m of stores.log.readStream(Streams.vm(vmId), 0)) for (const e of decodeBatch(m.seq, m.data)) out.push([e.body.type, e.audit.host]);
    return out;
  }

  it('refuses a command for a VM another host owns with the typed error, appending nothing', async () => {
    ok(await add(h1, 'v'));
    const t = ok(await submit(h1, 'v', start)) as string;
    expect((await view.taskEnded(t)).status).toBe('completed');
    expect(ownerOf(view.vms.get('v'))).toBe('h1');
    const head = await stores.log.head();
    for (const command of [
      { type: 'SubmitOperation', vmId: 'v', operation: { kind: 'VM.pause' } },
      { type: 'AddDevice', device: { kind: 'vbd', config: { id: ['v', 'xvda'], mode: 'ReadWrite', ty: 'Disk', unpluggable: true, extra_backend_keys: [], extra_private_keys: [] } } },
      { type: 'CancelTask', vmId: 'v', taskId: t },
      { type: 'DestroyTask', vmId: 'v', taskIds: [t] },
      { type: 'DebugTrigger', cmd: 'crash', args: ['v'] },
    ] as const) {
      expect(await h2.execute({ dbg: 't', command: command as never }), command.type).toEqual({ ok: false, seq: expect.any(Number), error: notOwner('v', 'h1', 'h2') });
    }
    expect(await stores.log.head()).toBe(head);
  });

  it('a free VM is claimed by exactly one of two agents racing for it, in the message of its decision', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `race${i}`);
    // Added through a third host: both racers must claim.
    const h0 = await HostAgent.start({ stores, hostId: 'h0' });
    for (const id of ids) ok(await add(h0, id));
    await h0.close();
    const replies = await Promise.all(ids.map((id) => Promise.all([submit(h1, id, start), submit(h2, id, start)])));
    for (const [id, [r1, r2]] of ids.map((id, i) => [id, replies[i]!] as const)) {
      expect([r1.ok, r2.ok].filter(Boolean), id).toHaveLength(1);
      const [winner, loser, lost] = r1.ok ? (['h1', 'h2', r2] as const) : (['h2', 'h1', r1] as const);
      expect(lost, id).toMatchObject({ ok: false, error: notOwner(id, winner, loser) });
      const t = ((r1.ok ? r1 : r2) as { value: string }).value;
      expect((await view.taskEnded(t)).status).toBe('completed');
      const vm = view.vms.get(id)!;
      expect([vm.owner, vm.domain?.host], id).toEqual([winner, winner]);
      // The claim and the task's creation share one message; one task only was created.
      const events = await writers(id);
      expect(events.filter(([type]) => type === 'TaskCreated')).toHaveLength(1);
      const created = events.findIndex(([type]) => type === 'TaskCreated');
      expect(events[created - 1]).toEqual(['VmOwnerChanged', winner]);
      const messages: string[][] = [];
      for await (const m of stores.log.readStream(Streams.vm(id), 0)) messages.push(decodeBatch(m.seq, m.data).map((e) => e.body.type));
      expect(messages).toContainEqual(['VmOwnerChanged', 'TaskCreated']);
    }
  });

  it('once free again (halted), the VM may be started by the other host, which claims it from the first', async () => {
    ok(await add(h1, 'm'));
    expect((await view.taskEnded(ok(await submit(h1, 'm', start)) as string)).status).toBe('completed');
    // h2 learns of the VM (a refusal), and keeps that state while h1 halts it.
    expect(await submit(h2, 'm', { kind: 'VM.pause' })).toMatchObject({ ok: false, error: notOwner('m', 'h1', 'h2') });
    expect((await view.taskEnded(ok(await submit(h1, 'm', { kind: 'VM.shutdown', fallbackToHard: false })) as string)).status).toBe('completed');
    expect(ownerOf(view.vms.get('m'))).toBeUndefined();
    // h2's own view of the VM is stale: it looks again before refusing, and the VM is free.
    const t = ok(await submit(h2, 'm', start)) as string;
    expect((await view.taskEnded(t)).status).toBe('completed');
    expect(view.vms.get('m')).toMatchObject({ owner: 'h2', domain: { host: 'h2' } });
    const events = await writers('m');
    expect(events.filter(([type]) => type === 'VmOwnerChanged')).toEqual([
      ['VmOwnerChanged', 'h1'],
      ['VmOwnerChanged', 'h2'],
    ]);
    // Domids are per host: h2's first domain.
    expect(view.vms.get('m')!.domain!.domid).toBe(1);
  });

  it('the address every agent serves takes a command for a free VM', async () => {
    const reply = decodeReply(await stores.bus.request(ANY_AGENT, encodeCommand({ dbg: 't', command: { type: 'AddVm', config: vmConfig('anyone'), refuseExisting: false } })));
    expect(reply).toMatchObject({ ok: true, value: 'anyone' });
    await view.until(() => view.vms.get('anyone')?.config !== undefined);
    expect(['h1', 'h2']).toContain(view.vms.get('anyone')!.owner);
  });
});
