/**
 * The typed client (@xenops/client) against real xenopsd processes, over each transport: HTTP on
 * TCP (with and without a token), HTTP on the Unix socket, NATS on the §2.7 subject. Typed
 * arguments in, decoded results out, the service's errors as XenopsCallError with their variant,
 * a task followed to its end with progress, and the failures of each transport typed.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { XenopsAuthError, XenopsCallError, XenopsClient, XenopsConnectionError, XenopsTaskFailedError } from '@xenops/client';
import { VmT, type VmConfig } from '@xenops/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, makeTempDir, NATS_URL, spawnXenopsd, uniquePrefix, uniqueSuffix, type Xenopsd } from '../support/xenopsd.js';

afterAll(cleanupAll);

const config = (id = vmId('client')): VmConfig => VmT.decode(xenopsdVm(id), 'vm');

/** What every transport must do: a VM added, started (a task followed to its end), stat'ed and removed. */
async function lifecycle(client: XenopsClient): Promise<void> {
  const vm = config();
  expect(await client.call('VM.add', { vm })).toBe(vm.id);
  const [stored, halted] = await client.call('VM.stat', { id: vm.id });
  expect(stored.name).toBe('web01');
  expect(halted.power_state).toBe('Halted');

  const progress: number[] = [];
  const task = await client.call('VM.start', { id: vm.id, paused: false });
  expect(task).toMatch(/^[1-9][0-9]*$/);
  const outcome = await client.waitForTask(task, { onProgress: (p) => progress.push(p), destroy: true });
  expect(outcome.task.state[0]).toBe('Completed');
  expect(outcome.duration).toBeGreaterThanOrEqual(0);
  for (const p of progress) expect(p >= 0 && p <= 1).toBe(true);
  expect((await client.call('VM.stat', { id: vm.id }))[1].power_state).toBe('Paused');
  // destroyed once it ended
  await expect(client.call('Task.stat', { id: task })).rejects.toMatchObject({ value: ['Does_not_exist', ['task', task]] });

  // A task that fails: the VM is not Halted any more.
  const again = await client.call('VM.start', { id: vm.id, paused: false });
  const failed = await client.waitForTask(again).catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(XenopsTaskFailedError);
  expect((failed as XenopsTaskFailedError).tag).toBe('Bad_power_state');
  expect((failed as XenopsTaskFailedError).taskId).toBe(again);

  await client.waitForTask(await client.call('VM.shutdown', { id: vm.id }));
  await client.call('VM.remove', { id: vm.id });
  expect(await client.call('VM.exists', { id: vm.id })).toBe(false);
}

describe('the typed client over HTTP', () => {
  let svc: Xenopsd;
  beforeAll(async () => {
    svc = await spawnXenopsd({ mode: 'embedded' });
  });

  it('on TCP: typed calls, a task followed with progress, a failed task as XenopsTaskFailedError', async () => {
    const client = XenopsClient.http(svc.url!);
    await lifecycle(client);
    const info = await client.call('query');
    expect(info.vendor).toBe('xenops-ts');
    await client.close();
  });

  it('on the Unix socket', async () => {
    const client = XenopsClient.socket(svc.socketPath!);
    await lifecycle(client);
    await client.close();
  });

  it("answers the service's errors as XenopsCallError with the variant, and bad arguments too", async () => {
    const client = XenopsClient.http(svc.url!);
    const missing = await client.call('VM.stat', { id: 'no-such-vm' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(XenopsCallError);
    expect((missing as XenopsCallError).method).toBe('VM.stat');
    expect((missing as XenopsCallError).value).toEqual(['Does_not_exist', ['VM', 'no-such-vm/config']]);
    // A value the types allow but the service refuses: an argument error of the call.
    const bad = await client.call('HOST.is_compatible', { vm_policy: 'xyz', host_policy: '' }).catch((e: unknown) => e);
    expect((bad as XenopsCallError).tag).toBe('Internal_error');
    // Through the untyped door, exactly what came on the wire.
    const raw = await client.callWire('VM.stat', { id: 'no-such-vm' }).catch((e: unknown) => e);
    expect((raw as XenopsCallError).wire).toEqual(['Does_not_exist', ['VM', 'no-such-vm/config']]);
    await client.close();
  });

  it('a service that is not there is a XenopsConnectionError naming the problem', async () => {
    const stopped = await spawnXenopsd({ mode: 'embedded' });
    const url = stopped.url!;
    await stopped.stop();
    const e = await XenopsClient.http(url).call('query').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(XenopsConnectionError);
    expect((e as XenopsConnectionError).problem).toBe('refused');
    const s = await XenopsClient.socket('/nonexistent/xenopsd.sock').call('query').catch((err: unknown) => err);
    expect((s as XenopsConnectionError).problem).toBe('no-socket');
  });

  it('sends the bearer token on TCP; without it the service refuses with XenopsAuthError', async () => {
    const dir = await makeTempDir('xclient-token');
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, 's3cret\n');
    const guarded = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--token-file', tokenFile] });
    const refused = await XenopsClient.http(guarded.url!).call('query').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(XenopsAuthError);
    expect((refused as XenopsAuthError).credentialsGiven).toBe(false);
    const wrong = await XenopsClient.http(guarded.url!, { token: 'nope' }).call('query').catch((e: unknown) => e);
    expect((wrong as XenopsAuthError).credentialsGiven).toBe(true);
    expect((await XenopsClient.http(guarded.url!, { token: 's3cret' }).call('query')).name).toBe('xenops');
    await guarded.stop();
  });
});

describe('the typed client over NATS', () => {
  // Its own subject (xenopsd --queue): other gateways on this NATS server answer the default one.
  const subject = `xenops.test.client.${uniqueSuffix()}`;

  it('requests on the gateway subject, and a subject nobody serves is a no-responders XenopsConnectionError', async () => {
    const prefix = uniquePrefix('client');
    const hostId = `h-${uniqueSuffix()}`;
    await spawnXenopsd({ mode: 'nats', role: 'agent', natsPrefix: prefix, hostId, extraArgs: ['--socket', 'off'] });
    await spawnXenopsd({ mode: 'nats', role: 'gateway', natsPrefix: prefix, hostId, extraArgs: ['--queue', subject] });
    const client = XenopsClient.nats(NATS_URL, { subject });
    await lifecycle(client);
    await client.close();

    const nobody = XenopsClient.nats(NATS_URL, { subject: `${subject}.nobody` });
    const e = await nobody.call('query').catch((err: unknown) => err);
    expect((e as XenopsConnectionError).problem).toBe('no-responders');
    await nobody.close();
  });
});
