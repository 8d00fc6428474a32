/**
 * Issue 11, item 2: a damaged log does not take the service down. Messages are damaged on
 * purpose (a row of the embedded store's file overwritten while the service is stopped; bytes
 * that are not an event batch published straight onto a NATS event subject, service stopped or
 * running), then: the service starts, `/healthz` is 200 "degraded" naming the seq and the VM,
 * `/metrics` counts it, `xenops verify` names it and exits non-zero, every call on the damaged VM
 * is refused naming the seq, and another VM goes through a whole lifecycle.
 */
import { connect } from '@nats-io/transport-node';
import { decodeReply, encodeCommand, type CommandReply } from '@xenops/core';
import { natsNames } from '@xenops/store-nats';
import { afterAll, describe, expect, it } from 'vitest';
import { damageEmbeddedLog, healthz, metricsText, publishGarbage, xenops, type LoggedMessage } from '../support/damage.js';
import { httpRequest, RpcClient, X, waitTask } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, NATS_URL, respawn, spawnXenopsd, startNatsCluster } from '../support/xenopsd.js';

afterAll(cleanupAll);

/** The refusal of a call on VM `vm` quarantined at `seq`. */
const refusal = (vm: string, seq: number) => [
  'Internal_error',
  expect.stringMatching(new RegExp(`^VM ${vm} cannot be used: its log is damaged at seq ${seq} \\(undecodable event batch: .+\\); see xenops verify$`)),
];

/**
 * A VM with a disk, a finished task destroyed by Task.destroy (a message of its VM's stream), an
 * UPDATES barrier (a message of a stream only gateways write) and a host fact; returns the task id.
 */
async function populate(c: RpcClient, bad: string, other: string): Promise<string> {
  await c.ok('VM.add', X({ vm: xenopsdVm(bad) }));
  await c.ok('VBD.add', X({ vbd: { id: [bad, 'xvda'], backend: ['Local', '/dev/null'] } }));
  await c.ok('VM.add', X({ vm: xenopsdVm(other) }));
  const t = await c.ok<string>('VM.start', X({ id: other, paused: true }));
  expect((await waitTask(c, t)).state[0]).toBe('Completed');
  await c.ok('Task.destroy', X({ id: t }));
  await c.ok('UPDATES.inject_barrier', X({ vm_id: other, id: 1 }));
  // A host-level fact (`host/<id>`).
  await c.ok('HOST.send_debug_keys', X({ debug_keys: 'q' }));
  return t;
}

/**
 * Everything a damaged log must still give, once the service has found the damage:
 * `damaged` lists the damaged messages, the first of them on `vm/<bad>`.
 */
async function expectDegradedAndServing(url: string, c: RpcClient, mode: string, bad: string, damaged: readonly LoggedMessage[]): Promise<void> {
  const badSeq = damaged.find((d) => d.stream === `vm/${bad}`)!.seq;
  // Found by the fold, or for messages a start snapshot covers by the scan that follows the start.
  await expect.poll(async () => (await healthz(url)).body.damaged?.length ?? 0, { timeout: 15_000 }).toBe(damaged.length);
  const health = await healthz(url);
  expect(health.httpStatus).toBe(200);
  expect(health.body).toMatchObject({ status: 'degraded', mode, seq: expect.any(Number), instance_id: expect.any(String), quarantined_vms: [bad] });
  expect(health.body.damaged).toEqual(
    damaged.map((d) => {
      const [kind, id] = [d.stream.slice(0, d.stream.indexOf('/')), d.stream.slice(d.stream.indexOf('/') + 1)];
      // A message of a gateway stream (UPDATES) belongs to no VM, task or host.
      const owner = ['vm', 'task', 'host'].includes(kind) ? { [kind]: id } : {};
      return { seq: d.seq, stream: d.stream, ...owner, error: expect.stringMatching(/^undecodable event batch: /) };
    }),
  );

  const metrics = await metricsText(url);
  expect(metrics).toContain(`\nxenops_log_damaged_messages ${damaged.length}\n`);
  expect(metrics).toContain(`\nxenops_vm_quarantined{vm="${bad}",seq="${badSeq}"} 1\n`);

  const verify = await xenops(url, 'verify');
  expect(verify.code, verify.stdout + verify.stderr).not.toBe(0);
  expect(verify.stdout).toContain(`damaged: seq ${badSeq} of VM ${bad} (stream vm/${bad}) cannot be read: undecodable event batch`);
  for (const d of damaged) expect(verify.stdout).toContain(`damaged: seq ${d.seq} of `);
  expect(verify.stdout).toMatch(new RegExp(`^FAILED: ${damaged.length} damaged message\\(s\\) in the log \\(quarantined VM\\(s\\): ${bad}\\)`, 'm'));
  // The route behind it answers (it failed with a 500 before damage was reported).
  const route = await httpRequest({ url }, { method: 'GET', path: '/verify' });
  expect(route.status).toBe(200);
  const verifyJson = JSON.parse(route.body) as { ok: boolean; damaged: LoggedMessage[]; quarantinedVms: string[] };
  expect(verifyJson).toMatchObject({ ok: false, quarantinedVms: [bad] });
  expect(verifyJson.damaged.map((d) => d.seq)).toEqual(damaged.map((d) => d.seq));

  // Every call that would change the damaged VM is refused, naming the seq.
  const refused = refusal(bad, badSeq);
  expect(await c.fail('VM.start', X({ id: bad, paused: false }))).toEqual(refused);
  expect(await c.fail('VM.remove', X({ id: bad }))).toEqual(refused);
  expect(await c.fail('VM.add', X({ vm: xenopsdVm(bad) }))).toEqual(refused);
  expect(await c.fail('VBD.add', X({ vbd: { id: [bad, 'xvdb'] } }))).toEqual(refused);
  expect(await c.fail('VBD.remove', X({ id: [bad, 'xvda'] }))).toEqual(refused);
  expect(await c.fail('VM.set_xsdata', X({ id: bad, xsdata: { k: 'v' } }))).toEqual(refused);
  expect(await c.fail('DEBUG.trigger', X({ cmd: 'no-ack', args: [bad] }))).toEqual(refused);
  // Reads show its last good state.
  const [config] = await c.ok<[{ id: string }, unknown]>('VM.stat', X({ id: bad }));
  expect(config.id).toBe(bad);

  // Every other VM is served: a whole lifecycle.
  const fresh = vmId('fresh');
  await c.ok('VM.add', X({ vm: xenopsdVm(fresh) }));
  for (const [method, args] of [
    ['VM.start', { paused: false }],
    ['VM.unpause', {}],
    ['VM.shutdown', {}],
  ] as const) {
    const task = await waitTask(c, await c.ok<string>(method, X({ id: fresh, ...args })));
    expect(task.state[0], method).toBe('Completed');
  }
  await c.ok('VM.remove', X({ id: fresh }));
  expect(await c.fail('VM.stat', X({ id: fresh }))).toEqual(['Does_not_exist', ['VM', `${fresh}/config`]]);
}

describe('a log damaged on disk, embedded store', () => {
  it('starts degraded after a row of the events table is overwritten, and a snapshot taken after keeps the quarantine', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded' });
    const bad = vmId('bad');
    const destroyed = await populate(svc.client(), bad, vmId('other'));
    expect(await svc.stop()).toBe(0); // a graceful stop: a fold snapshot at the head covers everything
    // The VBD.add of the bad VM (its second message), the barrier and the host's fact.
    const damaged = damageEmbeddedLog(svc.dataDir, (messages) => [
      messages.filter((m) => m.stream === `vm/${bad}`)[1]!,
      messages.find((m) => m.stream === 'updates/barriers')!,
      messages.find((m) => m.stream === `host/${svc.hostId}`)!,
    ]);
    expect(damaged.every((m) => m !== undefined)).toBe(true);

    svc = await respawn(svc);
    // The snapshot's range is scanned in the background, but a log this small is checked before
    // the service answers at all: the first /healthz already knows.
    expect((await healthz(svc.url!)).body.damaged?.map((d) => d.seq)).toEqual(damaged.map((d) => d.seq));
    await expectDegradedAndServing(svc.url!, svc.client(), 'embedded', bad, damaged);
    // The read model started from the snapshot, folded while every message was readable: the VM
    // shows that last good state (its disk included) and the task stays destroyed.
    expect(await svc.client().ok<unknown[]>('VBD.list', X({ id: bad }))).toHaveLength(1);
    expect(await svc.client().fail('Task.stat', X({ id: destroyed }))).toEqual(['Does_not_exist', ['task', destroyed]]);

    // The snapshot written at this stop holds the damage: the next start refuses the VM as well.
    expect(await svc.stop()).toBe(0);
    svc = await respawn(svc);
    const health = await healthz(svc.url!);
    expect(health).toMatchObject({ httpStatus: 200, body: { status: 'degraded', quarantined_vms: [bad] } });
    expect(health.body.damaged?.map((d) => d.seq)).toEqual(damaged.map((d) => d.seq));
    expect(await svc.client().fail('VM.start', X({ id: bad, paused: false }))).toEqual(refusal(bad, damaged[0]!.seq));
    expect(svc.stderr).toMatch(/read model: restored the snapshot at seq \d+ \(2 VM\(s\), \d+ task\(s\), 3 damaged message\(s\) of the log/);
    expect(svc.stderr).toMatch(/agent e2e-host: recovered 2 VM\(s\) .*; 1 quarantined by a damaged log/);
  }, 120_000);
});

describe('a log damaged on disk after a kill -9, embedded store', () => {
  it('leaves the damaged VM\u2019s running and queued tasks as they were: nothing runs, nothing is written to its stream', async () => {
    let svc = await spawnXenopsd({ mode: 'embedded' });
    let c = svc.client();
    const bad = vmId('bad');
    await c.ok('VM.add', X({ vm: xenopsdVm(bad) }));
    const running = await c.ok<string>('VM.delay', X({ id: bad, delay: 60 }));
    const queued = await c.ok<string>('VM.start', X({ id: bad, paused: false }));
    await c.ok('DEBUG.trigger', X({ cmd: 'no-ack', args: [bad, 'ignore'] }));
    // A write after both tasks were queued (a device add does not wait for the queue).
    await c.ok('VBD.add', X({ vbd: { id: [bad, 'xvdz'] } }));
    await svc.kill9(); // no snapshot: the restart folds the whole log and meets the damage itself
    // The VM's last message (after both tasks were queued) is damaged.
    const damaged = damageEmbeddedLog(svc.dataDir, (messages) => [messages.filter((m) => m.stream === `vm/${bad}`).at(-1)!]);

    svc = await respawn(svc);
    c = svc.client();
    await expectDegradedAndServing(svc.url!, c, 'embedded', bad, damaged);
    // Both tasks stay as the log left them: not failed by the restart, not run, not cancellable.
    for (const id of [running, queued]) expect((await c.ok<{ state: unknown[] }>('Task.stat', X({ id }))).state[0], id).toBe('Pending');
    expect(await c.fail('Task.cancel', X({ id: queued }))).toEqual(refusal(bad, damaged[0]!.seq));
    // The audit history shows the damaged message in its place, and nothing after it on that VM.
    const history = (await httpRequest({ url: svc.url! }, { method: 'GET', path: `/log?vm=${bad}` })).body.trim().split('\n');
    const last = JSON.parse(history.at(-1)!) as { seq: number; event: string; text: string };
    expect(last).toMatchObject({ seq: damaged[0]!.seq, event: 'Damaged', text: expect.stringContaining('cannot be read: undecodable event batch') });
    expect(svc.stderr).toMatch(new RegExp(`agent e2e-host: the log is damaged at seq ${damaged[0]!.seq} \\(vm/${bad}\\).*VM ${bad} is quarantined`));
  }, 120_000);
});

describe('a log damaged on NATS', () => {
  it('one process: garbage published onto a VM\u2019s, a task\u2019s and the host\u2019s subjects while stopped', async () => {
    let svc = await spawnXenopsd({ mode: 'nats' });
    const bad = vmId('bad');
    const destroyed = await populate(svc.client(), bad, vmId('other'));
    expect(await svc.stop()).toBe(0);
    const damaged = [
      await publishGarbage(svc.natsPrefix!, `vm/${bad}`),
      await publishGarbage(svc.natsPrefix!, `task/${destroyed}`),
      await publishGarbage(svc.natsPrefix!, `host/${svc.hostId}`),
    ];
    svc = await respawn(svc);
    await expectDegradedAndServing(svc.url!, svc.client(), 'nats', bad, damaged);
    // Damaged after its disk was added: the VM keeps it, as last known.
    expect(await svc.client().ok<unknown[]>('VBD.list', X({ id: bad }))).toHaveLength(1);
  }, 120_000);

  it('gateway and agent apart: garbage published while they run; both refuse the VM, and after their restarts too', async () => {
    const cluster = await startNatsCluster();
    const c = cluster.client();
    const bad = vmId('bad');
    await c.ok('VM.add', X({ vm: xenopsdVm(bad) }));
    expect((await waitTask(c, await c.ok<string>('VM.start', X({ id: bad, paused: true })))).state[0]).toBe('Completed');
    const damaged = [await publishGarbage(cluster.prefix, `vm/${bad}`), await publishGarbage(cluster.prefix, `host/${cluster.hostId}`)];
    // Seen live by the gateway's read model.
    await expect.poll(async () => (await healthz(cluster.gateway.url!)).body.status, { timeout: 10_000 }).toBe('degraded');

    // The agent, the VM's writer, refuses too (asked on the bus, past the gateway's own check):
    // its actor's next append finds the stream moved, reloads it from the log and finds the damage.
    const nc = await connect({ servers: NATS_URL, timeout: 3000 });
    try {
      const command = encodeCommand({ dbg: 'e2e', command: { type: 'SubmitOperation', vmId: bad, operation: { kind: 'VM.unpause' } } });
      const reply: CommandReply = decodeReply((await nc.request(natsNames(cluster.prefix).commandSubject(cluster.hostId), command, { timeout: 10_000 })).data);
      expect(reply).toMatchObject({ ok: false, error: refusal(bad, damaged[0]!.seq) });
    } finally {
      await nc.close();
    }
    await expectDegradedAndServing(cluster.gateway.url!, c, 'nats', bad, damaged);

    await cluster.restartAgent();
    await cluster.restartGateway();
    await expectDegradedAndServing(cluster.gateway.url!, cluster.client(), 'nats', bad, damaged);
    // The domain it had before the damage is still shown, and nothing ran on it since.
    const [, state] = await cluster.client().ok<[unknown, { power_state: string }]>('VM.stat', X({ id: bad }));
    expect(state.power_state).toBe('Paused');
    await cluster.stop();
  }, 180_000);
});
