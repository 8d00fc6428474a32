import { describeError } from '../errors.js';
import type { EventBody } from './event.js';

/**
 * One event in plain words, for the audit log (`xenops log`, API.md §9.5): what happened, to
 * which object. The caller adds time, seq and who asked.
 */
export function describeEvent(body: EventBody, seq: number): string {
  switch (body.type) {
    case 'VmAdded':
      return `VM ${body.vmId} configuration registered (name ${JSON.stringify(body.config.name)})`;
    case 'VmRemoved':
      return `VM ${body.vmId} removed`;
    case 'GuestModeChanged':
      return `VM ${body.vmId} guest now answers shutdown requests: ${body.mode}`;
    case 'VmOwnerChanged':
      if (body.migration) return `VM ${body.vmId} migrated: switched over from host ${body.previousHost} to host ${body.host} (task ${body.migration.taskId})`;
      return `VM ${body.vmId} now owned by host ${body.host}${body.previousHost ? ` (was ${body.previousHost})` : ''}`;
    case 'MigrationReceived':
      return `VM ${body.vmId} migration task ${body.taskId} taken over by its destination`;
    case 'TaskCreated':
      return `VM ${body.vmId} ${body.operation.kind.replace(/^VM\./, '')} requested: task ${seq} queued on host ${body.host}${body.placement ? ` (placed: ${body.placement})` : ''}`;
    case 'TaskStarted':
      return `task ${body.taskId} started`;
    case 'TaskProgressed':
      return `task ${body.taskId} ${body.atom} done (${Math.round(body.progress * 100)}%)`;
    case 'TaskCompleted':
      return `task ${body.taskId} completed in ${body.duration.toFixed(2)} s`;
    case 'TaskFailed':
      return `task ${body.taskId} failed after ${body.duration.toFixed(2)} s: ${describeError(body.error)}`;
    case 'TaskDestroyed':
      return `task ${body.taskId} destroyed`;
    case 'TaskCancelRequested':
      return `task ${body.taskId} cancellation requested`;
    case 'TaskDestroyOnFinishRequested':
      return `task ${body.taskId} will be destroyed when it ends`;
    case 'DomainCreated':
      return `VM ${body.vmId} domain ${body.domid} created on host ${body.host}`;
    case 'DomainBuilt':
      return `VM ${body.vmId} domain built`;
    case 'DeviceModelCreated':
      return `VM ${body.vmId} device model started`;
    case 'DeviceModelDestroyed':
      return `VM ${body.vmId} device model stopped`;
    case 'DomainPaused':
      return `VM ${body.vmId} paused`;
    case 'DomainUnpaused':
      return `VM ${body.vmId} unpaused`;
    case 'DomainMarkedSurvivable':
      return `VM ${body.vmId} domain survivable`;
    case 'DomainDestroyed':
      return `VM ${body.vmId} domain destroyed`;
    case 'DomainShutdownAcknowledged':
      return `VM ${body.vmId} guest acknowledged the ${body.reason} request`;
    case 'DomainVcpusSet':
      return `VM ${body.vmId} vCPUs set to ${body.vcpus}`;
    case 'DomainShadowMultiplierSet':
      return `VM ${body.vmId} shadow multiplier set to ${body.multiplier}`;
    case 'DomainMemoryRangeSet':
      return `VM ${body.vmId} memory dynamic range set to ${body.minimum}..${body.maximum}`;
    case 'DomainXsdataSet':
      return `VM ${body.vmId} xenstore data written (${body.xsdata.map(([k]) => k).join(', ')})`;
    case 'SuspendImageSaved':
      return `VM ${body.vmId} suspended to ${body.image.disk[0]} ${body.image.disk[1]}`;
    case 'SuspendImageDropped':
      return `VM ${body.vmId} suspend image dropped (${body.reason})`;
    case 'DomainRestored':
      return `VM ${body.vmId} domain restored from its suspend image`;
    case 'GuestActionRequested':
      return `VM ${body.vmId} guest requested ${body.action}`;
    case 'HostSettingChanged':
      return `host ${body.hostId} setting ${body.key} = ${JSON.stringify(body.value)}`;
    case 'CancelTriggerSet':
      return `cancel trigger armed for dbg ${JSON.stringify(body.dbg)} at point ${body.point}`;
    case 'CancelTriggerUsed':
      return `cancel trigger for dbg ${JSON.stringify(body.dbg)} used by task ${body.taskId}`;
    case 'DeviceAdded':
      return `VM ${body.vmId} ${body.device.kind.toUpperCase()} ${body.device.config.id[1]} registered`;
    case 'DeviceConfigChanged':
      return `VM ${body.vmId} ${body.device.kind.toUpperCase()} ${body.device.config.id[1]} changed (${body.reason})`;
    case 'DeviceRemoved':
      return `VM ${body.vmId} ${body.kind.toUpperCase()} ${body.dev} removed`;
    case 'DeviceActiveSet':
      return `VM ${body.vmId} ${body.kind.toUpperCase()} ${body.dev} ${body.active ? 'activated' : 'deactivated'}`;
    case 'DevicePlugged':
      return `VM ${body.vmId} ${body.kind.toUpperCase()} ${body.dev} plugged${body.diskNumber === undefined ? '' : ` at disk ${body.diskNumber}`}`;
    case 'DeviceUnplugged':
      return `VM ${body.vmId} ${body.kind.toUpperCase()} ${body.dev} unplugged`;
    case 'BarrierInjected':
      return `barrier ${body.barrierId} injected for VM ${body.vmId}`;
    case 'BarrierRemoved':
      return `barrier ${body.barrierId} removed`;
    case 'VmRefreshed':
      return `VM ${body.vmId} refreshed`;
  }
}
