import { Errors, NetworkT, PciAddressT, wireToJson, type Dict, type Network, type Operation, type PciAddress, type SeedMethods, type XenopsdMethods } from '@xenops/core';
import { resolveDestination } from '../hosts/destination.js';
import { printable } from '../hosts/placement.js';
import { evacuateHost } from '../hosts/evacuation.js';
import type { CallContext, SomeHandlers } from './method.js';
import { refusedTask, registeredVm, submitOperation } from './vm-calls.js';

export interface MigrationRequest {
  readonly url: string;
  readonly vdiMap: Dict<string>;
  readonly vifMap: Dict<Network>;
  readonly pciMap: Dict<PciAddress>;
}

/**
 * VM.migrate (§7.8): the VM must exist (an error of the call); `url` is resolved to a host here,
 * and a URL that names none gives a task failed with `Failed_to_contact_remote_service`. The
 * rest (power state, the transfer, the switch-over) is the task's, on the VM's queue.
 */
export async function migrateVm(call: CallContext, vmId: string, request: MigrationRequest): Promise<string> {
  registeredVm(call, vmId);
  const destination = await resolveDestination(call.gateway, request.url);
  const operation: Operation = {
    kind: 'VM.migrate',
    url: request.url,
    destination: destination ?? '',
    vdiMap: request.vdiMap,
    vifMapJson: jsonObject(request.vifMap.map(([dev, network]) => [dev, wireToJson(NetworkT.encode(network, 'internal'))])),
    pciMapJson: jsonObject(request.pciMap.map(([dev, address]) => [dev, wireToJson(PciAddressT.encode(address, 'internal'))])),
  };
  if (destination === undefined) {
    call.gateway.logLine(`migration: VM ${printable(vmId)}: ${JSON.stringify(request.url)} names no host of this ${call.gateway.mode === 'embedded' ? 'service (embedded: only this host)' : 'cluster'}`);
    return refusedTask(call, vmId, operation, call.gateway.hostId, Errors.failedToContactRemoteService(request.url));
  }
  call.gateway.logLine(`migration: VM ${printable(vmId)} to host ${printable(destination)} (${JSON.stringify(request.url)})`);
  return submitOperation(call, vmId, operation);
}

/** A JSON object from keys and values already in JSON. */
function jsonObject(entries: ReadonlyArray<readonly [string, string]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

export const xenopsdMigrationHandlers = {
  'VM.migrate': (call, a) => migrateVm(call, a.id, { url: a.xenops_url, vdiMap: a.vdi_map, vifMap: a.vif_map, pciMap: a.pci_map }),
  'HOST.evacuate': (call, a) => evacuateHost(call, a.host),
} satisfies SomeHandlers<XenopsdMethods>;

/** Seed `Vm.migrate {id, url}`: VM.migrate with empty maps (§5.4). */
export const seedMigrationHandlers = {
  'Vm.migrate': (call, a) => migrateVm(call, a.id, { url: a.url, vdiMap: [], vifMap: [], pciMap: [] }),
} satisfies SomeHandlers<SeedMethods>;
