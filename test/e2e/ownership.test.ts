/**
 * Ownership across processes (ARCHITECTURE.md "One writer per stream", API.md §9.7): two agents of
 * different host ids on one NATS prefix, driven on their command subjects as a gateway would. An
 * agent refuses a command for a VM the other owns with the typed error; two agents racing for a
 * free VM: exactly one wins, the other is refused naming the winner; a gateway whose read model
 * is behind routes to the owner after one refusal.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeReply, encodeCommand, type Command, type CommandReply } from '@xenops/core';
import { natsNames } from '@xenops/store-nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmConfig } from '../../packages/actors/src/testing/fixtures.js';
import { X, waitTask } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, NATS_URL, spawnXenopsd, uniquePrefix, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

describe('NATS: two agents of different hosts', () => {
  const prefix = uniquePrefix('owners');
  let agents: Record<'host-a' | 'host-b', Xenopsd>;
  let gatewayA: Xenopsd;
  let nc: NatsConnection;
  beforeAll(async () => {
    agents = {
      'host-a': await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'host-a', extraArgs: ['--socket', 'off'] }),
      'host-b': await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId: 'host-b', extraArgs: ['--socket', 'off'] }),
    };
    gatewayA = await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId: 'host-a' });
    nc = await connect({ servers: NATS_URL });
  });
  afterAll(async () => {
    await nc?.close();
  });

  const send = async (host: string, command: Command): Promise<CommandReply> =>
    decodeReply((await nc.request(natsNames(prefix).commandSubject(host), encodeCommand({ dbg: 'e2e', command }), { timeout: 10_000 })).data);
  const start = (vmId: string): Command => ({ type: 'SubmitOperation', vmId, operation: { kind: 'VM.start', paused: false, unpause: false } });
  const notOwner = (vm: string, owner: string, me: string) => ['Internal_error', `VM ${vm} is owned by host ${owner}; this is host ${me}`];

  it('an agent refuses a command for a VM the other host owns, with the typed error', async () => {
    const id = vmId('own');
    expect(await send('host-a', { type: 'AddVm', config: vmConfig(id), refuseExisting: false })).toMatchObject({ ok: true });
    const t = await send('host-a', start(id));
    expect(t.ok).toBe(true);
    await waitTask(gatewayA.client(), (t as { value: string }).value);
    expect(await send('host-b', { type: 'SubmitOperation', vmId: id, operation: { kind: 'VM.pause' } })).toMatchObject({ ok: false, error: notOwner(id, 'host-a', 'host-b') });
    expect(await send('host-b', { type: 'DebugTrigger', cmd: 'reboot', args: [id] })).toMatchObject({ ok: false, error: notOwner(id, 'host-a', 'host-b') });
  });

  it('two agents racing for free VMs: one claim wins per VM, the other agent is refused naming the winner', async () => {
    const ids = Array.from({ length: 8 }, () => vmId('race'));
    for (const id of ids) expect((await send(id.charCodeAt(6) % 2 ? 'host-a' : 'host-b', { type: 'AddVm', config: vmConfig(id), refuseExisting: false })).ok).toBe(true);
    const results = await Promise.all(ids.map((id) => Promise.all([send('host-a', start(id)), send('host-b', start(id))])));
    const winners = new Set<string>();
    results.forEach(([a, b], i) => {
      expect([a.ok, b.ok].filter(Boolean), ids[i]).toHaveLength(1);
      const [winner, loser, lost] = a.ok ? (['host-a', 'host-b', b] as const) : (['host-b', 'host-a', a] as const);
      expect(lost).toMatchObject({ ok: false, error: notOwner(ids[i]!, winner, loser) });
      winners.add(winner);
    });
    // The gateway sees each VM started by its winner.
    const c = gatewayA.client();
    for (const [i, [a, b]] of results.entries()) {
      const task = (a.ok ? a : b) as { value: string };
      expect((await waitTask(c, task.value)).state[0], ids[i]).toBe('Completed');
    }
  });

  it('a gateway routes by owner: a VM host b owns is driven through host a\u2019s gateway', async () => {
    const c = gatewayA.client();
    const id = vmId('routed');
    await c.ok('VM.add', X({ vm: xenopsdVm(id) }));
    const t = await send('host-b', start(id));
    expect(t.ok).toBe(true);
    await waitTask(c, (t as { value: string }).value);
    // Host a's read model may not have folded the start yet: its agent refuses, it catches up and routes again.
    const pause = await c.ok<string>('VM.unpause', X({ id }));
    expect((await waitTask(c, pause)).state[0]).toBe('Completed');
    const shutdown = await c.ok<string>('VM.shutdown', X({ id }));
    expect((await waitTask(c, shutdown)).state[0]).toBe('Completed');
    expect(agents['host-b'].stderr).not.toMatch(/failed/);
  });
});
