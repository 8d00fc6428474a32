/**
 * HOST.evacuate (API.md §9.7): every VM the host owns is live-migrated to another host chosen by
 * `least-loaded`, one VM.migrate task each (visible in Task.list; `subtasks` stays `{}`). The
 * evacuation's own task, on the log's `task/evacuations` stream, completes when they have all
 * ended, with `[[vm id, migration task id], …]`, or fails naming the VMs left behind.
 */
import { Errors, ownerOf, Streams, type EventBody, type Operation, type VmAggregate } from '@xenops/core';
import type { CallContext } from '../methods/method.js';
import { migrateVm } from '../methods/migration.js';
import { writeAsGateway } from '../methods/vm-calls.js';
import { hostRecords } from './host-records.js';
import { printable } from './placement.js';

/** How long an evacuation waits for one of its migrations. */
const MIGRATION_WAIT_MS = 2 * 60 * 60_000;

/** The lease its runner holds while an evacuation runs: lapsed, the runner is gone (task-reaper.ts ends the task). */
export const evacuationLease = (taskId: string): string => `evacuation-${taskId}`;

export async function evacuateHost(call: CallContext, host: string): Promise<string> {
  const operation: Operation = { kind: 'HOST.evacuate', host };
  const seq = await writeAsGateway(call, Streams.evacuations(), [{ type: 'TaskCreated', vmId: '', operation, host: call.gateway.hostId, ctimeMs: Date.now() }]);
  const taskId = String(seq);
  call.gateway.logLine(`evacuation of host ${printable(host)}: task ${taskId}`);
  const lease = call.gateway.holdLease(evacuationLease(taskId));
  void runEvacuation(call, taskId, host)
    .catch((e: unknown) => call.gateway.logLine(`evacuation of host ${printable(host)}: task ${taskId} could not be recorded: ${(e as Error).message}`))
    .finally(() => lease.release());
  return taskId;
}

async function runEvacuation(call: CallContext, taskId: string, host: string): Promise<void> {
  const { gateway } = call;
  const shown = printable(host);
  const started = Date.now();
  const write = (...bodies: EventBody[]) => writeAsGateway(call, Streams.evacuations(), bodies);
  await write(
    { type: 'TaskStarted', taskId, startedMs: started },
    { type: 'TaskProgressed', taskId, progress: 0, cancelPointsSeen: 0, cancellable: false, atom: `evacuate ${host}` },
  );
  const vms = [...gateway.projection.vms.values()].filter((vm) => vm.config && ownerOf(vm) === host).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const left: string[] = [];
  const started_: Array<readonly [string, string]> = [];
  const free = new Map((await hostRecords(gateway)).filter((h) => h.state === 'Up' && h.id !== host).map((h) => [h.id, { free: h.memory_free, running: h.running }]));
  for (const vm of vms) {
    const destination = leastLoaded(free, vm);
    if (destination === undefined) {
      gateway.logLine(`evacuation of host ${shown}: no other Up host has room for VM ${vm.id}`);
      left.push(vm.id);
      continue;
    }
    try {
      const migration = await migrateVm(call, vm.id, { url: `xenops://${destination}`, vdiMap: [], vifMap: [], pciMap: [] });
      gateway.logLine(`evacuation of host ${shown}: VM ${vm.id} to host ${destination}, task ${migration}`);
      started_.push([vm.id, migration]);
    } catch (e) {
      gateway.logLine(`evacuation of host ${shown}: VM ${vm.id} not migrated: ${(e as Error).message}`);
      left.push(vm.id);
    }
  }
  let ended = 0;
  await Promise.all(
    started_.map(async ([vmId, migration]) => {
      const outcome = await gateway.projection.waitForTaskEnd(migration, MIGRATION_WAIT_MS);
      if (outcome?.task.status !== 'completed') left.push(vmId);
      ended++;
      if (ended < started_.length) {
        await write({ type: 'TaskProgressed', taskId, progress: ended / started_.length, cancelPointsSeen: 0, cancellable: false, atom: `migrated VM ${vmId}` }).catch((e: unknown) =>
          // Progress only: the task's end is written (or fails the run) below.
          gateway.logLine(`evacuation of host ${shown}: task ${taskId}: progress not recorded: ${(e as Error).message}`),
        );
      }
    }),
  );
  const duration = (Date.now() - started) / 1000;
  if (left.length > 0) {
    left.sort();
    gateway.logLine(`evacuation of host ${shown}: task ${taskId} failed, left ${left.join(' ')}`);
    await write({ type: 'TaskFailed', taskId, error: Errors.internal(`evacuation of ${shown} left ${left.map(printable).join(' ')}`).value, cancelPointsSeen: 0, duration });
    return;
  }
  const resultJson = JSON.stringify(started_.map(([vm, task]) => [vm, task]));
  gateway.logLine(`evacuation of host ${shown}: task ${taskId} completed, ${started_.length} VM(s) migrated`);
  await write({ type: 'TaskCompleted', taskId, duration, resultJson, cancelPointsSeen: 0 });
}

/**
 * The placement policy `least-loaded` (§9.7) among the hosts left: the most free memory that
 * fits, then the fewest running VMs; what it takes is counted against the host chosen.
 */
function leastLoaded(hosts: Map<string, { free: number; running: number }>, vm: VmAggregate): string | undefined {
  const need = vm.config?.memory_static_max ?? 0;
  let best: [string, { free: number; running: number }] | undefined;
  for (const entry of hosts) {
    const [id, h] = entry;
    if (h.free < need) continue;
    if (!best || h.free > best[1].free || (h.free === best[1].free && (h.running < best[1].running || (h.running === best[1].running && id < best[0])))) best = entry;
  }
  if (!best) return undefined;
  best[1].free -= need;
  best[1].running += 1;
  return best[0];
}
