import {
  AppendTooLargeError,
  encodeBatch,
  Errors,
  ownerNamedBy,
  ownerOf,
  quarantineError,
  XenopsError,
  type Audit,
  type Command,
  type EventBody,
  Streams,
  type Operation,
  type TaskRecord,
  type TaskView,
  type VmAggregate,
  type VmConfig,
  type VmState,
} from '@xenops/core';
import { readView } from '../read-model/history.js';
import { compareTaskIds, taskViewOf, vmStateOf } from '../read-model/views.js';
import { NoAgentError } from '../service/engine-client.js';
import { place, PlacementError, type Placement } from '../hosts/placement.js';
import { inHostScope } from '../hosts/host-scope.js';
import type { CallContext } from './method.js';

/** How long an S/q call waits for its task (§7.2). */
const QUEUED_CALL_TIMEOUT_MS = 1_200_000;

/**
 * Refuses early a call on a VM quarantined by a damaged log (its agent refuses it too): before
 * `Does_not_exist`, since whether the VM exists is exactly what the damage may hide.
 */
export function refuseQuarantined(call: CallContext, vmId: string): void {
  const q = call.gateway.projection.vms.get(vmId)?.quarantine;
  if (q) throw quarantineError(vmId, q);
}

/** The VM must be registered: `Does_not_exist` (VM) otherwise. */
export function registeredVm(call: CallContext, vmId: string): VmAggregate {
  refuseQuarantined(call, vmId);
  const vm = call.gateway.projection.vms.get(vmId);
  if (!vm?.config) throw Errors.vmDoesNotExist(vmId);
  return vm;
}

/** `add` never waits for a queue (§7.2); with no agent on this host, any agent decides it (the VM is free). */
export async function addVm(call: CallContext, config: VmConfig, refuseExisting: boolean): Promise<string> {
  return (await sendToOwner(call, config.id, { type: 'AddVm', config, refuseExisting }, { orAnyAgent: true })) as string;
}

/** VM.import_metadata of a new VM (or seed, refusing an existing one): one decision of the VM's actor. */
export async function importVm(call: CallContext, vmId: string, metadataJson: string, refuseExisting: boolean): Promise<string> {
  const command: Command = { type: 'ImportVm', vmId, metadataJson, refuseExisting };
  return (await sendToOwner(call, vmId, command, { orAnyAgent: true })) as string;
}

/**
 * Sends a command about a VM to the agent that owns it (a free VM: this gateway's host's, or with
 * `orAnyAgent` any agent when this host has none). An agent that turns out to own it no more (this
 * read model was behind) refuses it: the call is routed again once the read model has caught up.
 */
export async function sendToOwner(
  call: CallContext,
  vmId: string,
  command: Command,
  opts: { readonly orAnyAgent?: boolean; readonly freeVmHost?: string } = {},
): Promise<unknown> {
  refuseQuarantined(call, vmId);
  const { projection, engine } = call.gateway;
  for (let attempt = 1; ; attempt++) {
    const vm = projection.vms.get(vmId);
    const owner = ownerOf(vm);
    try {
      return await engine.send(owner ?? opts.freeVmHost ?? call.gateway.hostId, call.dbg, command, {
        orAnyAgent: owner === undefined && opts.freeVmHost === undefined && opts.orAnyAgent === true,
      });
    } catch (e) {
      if (attempt > 1 || !(e instanceof XenopsError) || ownerNamedBy(e.value) === undefined) throw e;
      await projection.waitFor(await call.gateway.log.head());
    }
  }
}

function gatewayAudit(call: CallContext): Audit {
  return { dbg: call.dbg, timeMs: Date.now(), host: call.gateway.hostId, actor: 'gateway' };
}

/** Appends facts to a stream only gateways write (audit actor `gateway`) and waits until the read model shows them. */
export async function writeAsGateway(call: CallContext, stream: string, bodies: readonly EventBody[]): Promise<number> {
  const audit = gatewayAudit(call);
  let seq: number;
  try {
    seq = await call.gateway.log.append({ stream, data: encodeBatch(bodies.map((body) => ({ audit, body }))) });
  } catch (e) {
    // API.md §2.7: the NATS server's max_payload bounds what a call may write as the 16 MiB limit does.
    if (e instanceof AppendTooLargeError) throw Errors.internal(`request body exceeds ${e.maxPayload} bytes (the NATS server's max_payload) as an event of ${stream}`);
    throw e;
  }
  await call.gateway.projection.waitFor(seq);
  return seq;
}

/** A **T** call: the VM must exist (an error of the call itself), then the task id comes back at once. */
export async function submitOperation(
  call: CallContext,
  vmId: string,
  operation: Operation,
  opts: { readonly mayCreate?: boolean; readonly host?: string } = {},
): Promise<string> {
  refuseQuarantined(call, vmId);
  const vm = opts.mayCreate ? call.gateway.projection.vms.get(vmId) : registeredVm(call, vmId);
  try {
    const placed = await placementOf(call, vm, operation, opts.host);
    const command: Command = { type: 'SubmitOperation', vmId, operation, ...(placed ? { placement: placed.reason } : {}) };
    return (await sendToOwner(call, vmId, command, placed ? { freeVmHost: placed.host } : {})) as string;
  } catch (e) {
    if (!(e instanceof NoAgentError || e instanceof PlacementError)) throw e;
    return refusedTask(call, vmId, operation, e.host, e);
  }
}

/**
 * A **T** call refused before any agent could queue it still returns a task (§5): one write, on
 * the stream of such tasks, creates it and fails it with the reason.
 */
export async function refusedTask(call: CallContext, vmId: string, operation: Operation, host: string, error: XenopsError): Promise<string> {
  const seq = await writeAsGateway(call, Streams.task('unrouted'), [
    { type: 'TaskCreated', vmId, operation, host, ctimeMs: Date.now() },
    { type: 'TaskFailed', taskId: '', error: error.value, cancelPointsSeen: 0, duration: 0 },
  ]);
  return String(seq);
}

/**
 * The host of a VM.start / VM.resume of an unowned VM (API.md §9.7) and why: the gateway logs it,
 * and the agent records the reason with its claim of the VM (`VmOwnerChanged`). Undefined for
 * every other operation and for a VM that has an owner (it runs there).
 */
async function placementOf(
  call: CallContext,
  vm: VmAggregate | undefined,
  operation: Operation,
  explicitHost: string | undefined,
): Promise<Placement | undefined> {
  if (operation.kind !== 'VM.start' && operation.kind !== 'VM.resume') return undefined;
  const owner = ownerOf(vm);
  if (owner !== undefined) {
    if (explicitHost !== undefined && explicitHost !== owner) {
      call.gateway.logLine(`placement: VM ${vm?.id} stays on its owner ${owner} (the call asked for host ${explicitHost})`);
    }
    return undefined;
  }
  if (!vm?.config) return undefined;
  try {
    const placed = await place(call.gateway, vm.config, explicitHost);
    call.gateway.logLine(`placement: ${operation.kind} of VM ${vm.id} on host ${placed.host} (${placed.reason})`);
    return placed;
  } catch (e) {
    if (e instanceof PlacementError) call.gateway.logLine(`placement: ${operation.kind} of VM ${vm.id} refused: ${JSON.stringify(e.value)}`);
    throw e;
  }
}

/** An **S/q** call: queued like a task, awaited, and its task destroyed when it ends (§7.2). */
export async function runQueued(call: CallContext, vmId: string, operation: Operation): Promise<unknown> {
  const taskId = await submitOperation(call, vmId, { ...operation, autoDestroy: true });
  const { projection } = call.gateway;
  const outcome = await projection.waitForTaskEnd(taskId, QUEUED_CALL_TIMEOUT_MS);
  if (!outcome) throw Errors.timedOutWaitingOnTask(taskId);
  await projection.waitFor(outcome.seq);
  if (outcome.task.status === 'failed') throw Errors.fromValue(outcome.task.error!);
  return outcome.task.resultJson ? JSON.parse(outcome.task.resultJson) : null;
}

export async function statVm(call: CallContext, vmId: string, asOf: number | undefined): Promise<[VmConfig, VmState] | undefined> {
  const view = await readView(call.gateway, asOf);
  const vm = view.vms.get(vmId);
  // Another host's VM does not exist for a gateway scoped to one host.
  if (!inHostScope(vm, call.gateway.hostScope)) return undefined;
  // A quarantined VM shows its last good state; one whose configuration is lost cannot be shown.
  if (vm?.quarantine && !vm.config) throw quarantineError(vmId, vm.quarantine);
  return vm?.config ? [vm.config, vmStateOf(vm)] : undefined;
}

export async function listVms(call: CallContext, asOf: number | undefined): Promise<Array<[VmConfig, VmState]>> {
  const view = await readView(call.gateway, asOf);
  const out: Array<[VmConfig, VmState]> = [];
  for (const vm of view.vms.values()) if (vm.config && inHostScope(vm, call.gateway.hostScope)) out.push([vm.config, vmStateOf(vm)]);
  return out.sort(([a], [b]) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function taskRecord(call: CallContext, id: string, asOf?: number): Promise<TaskRecord> {
  const view = await readView(call.gateway, asOf);
  const task = view.tasks.get(id);
  if (!task) throw Errors.taskDoesNotExist(id);
  return task;
}

export async function statTask(call: CallContext, id: string, asOf: number | undefined): Promise<TaskView> {
  return taskViewOf(await taskRecord(call, id, asOf));
}

export async function listTasks(call: CallContext, asOf: number | undefined): Promise<TaskView[]> {
  const view = await readView(call.gateway, asOf);
  return [...view.tasks.values()].sort((a, b) => compareTaskIds(a.id, b.id)).map(taskViewOf);
}

export async function cancelTask(call: CallContext, id: string): Promise<null> {
  const task = await taskRecord(call, id);
  if (task.status !== 'pending') return null; // cancelling a finished task is a no-op (§7.1)
  // An evacuation is not cancellable (its migrations are, one by one).
  if (task.operation.kind === 'HOST.evacuate') return null;
  refuseQuarantined(call, task.vmId);
  await sendToOwner(call, task.vmId, { type: 'CancelTask', vmId: task.vmId, taskId: id });
  return null;
}

/** Task.destroy_on_finish (§7.1): destroy when it ends; a task that has already ended goes at once. */
export async function destroyTaskOnFinish(call: CallContext, id: string): Promise<null> {
  const task = await taskRecord(call, id);
  if (task.status !== 'pending') return destroyTask(call, id);
  if (task.operation.kind === 'HOST.evacuate') throw Errors.internal(`task ${id} is an evacuation still running: destroy it once it has ended`);
  refuseQuarantined(call, task.vmId);
  await sendToOwner(call, task.vmId, { type: 'DestroyTaskOnFinish', vmId: task.vmId, taskId: id });
  return null;
}

/**
 * Deletes the task record; a running operation keeps running and its outcome is still logged.
 * The VM's owner records it (a free VM's: any agent), like everything else about the VM.
 */
export async function destroyTask(call: CallContext, id: string): Promise<null> {
  const task = await taskRecord(call, id);
  // An evacuation's record is the gateways' own: it goes the way it came.
  if (task.operation.kind === 'HOST.evacuate') {
    await writeAsGateway(call, Streams.evacuations(), [{ type: 'TaskDestroyed', taskId: id }]);
    return null;
  }
  await sendToOwner(call, task.vmId, { type: 'DestroyTask', vmId: task.vmId, taskIds: [id] }, { orAnyAgent: true });
  return null;
}
