import { Errors } from '../errors.js';
import type { EventBody } from '../events/event.js';
import { MetadataT, parseUntrustedJson, type Metadata } from '../idl/index.js';
import { DEVICE_KINDS, type DeviceConfig, type DeviceKind } from './devices.js';
import type { VmAggregate } from './vm-aggregate.js';

/** VBD device names `hd<x>` become `xvd<x>` on import (§7.9 step 3). */
function importedVbdName(dev: string): string {
  return dev.startsWith('hd') ? `xvd${dev.slice(2)}` : dev;
}

/** The devices of a Metadata document, re-keyed to `[vm.id, dev]` (§7.9 step 3). */
export function metadataDevices(m: Metadata): DeviceConfig[] {
  const vmId = m.vm.id;
  const rekey = <C extends { id: readonly [string, string] }>(c: C, dev = c.id[1]): C => ({ ...c, id: [vmId, dev] as C['id'] });
  return [
    ...m.vbds.map((c): DeviceConfig => ({ kind: 'vbd', config: rekey(c, importedVbdName(c.id[1])) })),
    ...m.vifs.map((c): DeviceConfig => ({ kind: 'vif', config: rekey(c) })),
    ...m.pcis.map((c): DeviceConfig => ({ kind: 'pci', config: rekey(c) })),
    ...m.vgpus.map((c): DeviceConfig => ({ kind: 'vgpu', config: rekey(c) })),
    ...m.vusbs.map((c): DeviceConfig => ({ kind: 'vusb', config: rekey(c) })),
  ];
}

/**
 * The events of an import (§7.9 steps 4–5): the configuration and every device written, the VM's
 * other devices deleted. Refused with Device_is_connected, before anything changes, when a device
 * to delete is plugged. The document's configuration is written as it is (`platformdata`
 * included, step 6); `domains` is opaque and not interpreted.
 */
export function importEvents(vm: VmAggregate, metadata: Metadata): EventBody[] {
  const devices = metadataDevices(metadata);
  const keep = new Set(devices.map((d) => `${d.kind}/${d.config.id[1]}`));
  const removed: Array<{ kind: DeviceKind; dev: string }> = [];
  for (const kind of DEVICE_KINDS) {
    for (const [dev, entry] of vm.devices[kind]) {
      if (keep.has(`${kind}/${dev}`)) continue;
      if (entry.plugged) throw Errors.deviceIsConnected();
      removed.push({ kind, dev });
    }
  }
  return [
    { type: 'VmAdded', vmId: vm.id, config: metadata.vm },
    ...removed.map(({ kind, dev }): EventBody => ({ type: 'DeviceRemoved', vmId: vm.id, kind, dev })),
    ...devices.map((device): EventBody => ({ type: 'DeviceAdded', vmId: vm.id, device })),
  ];
}

/**
 * Decodes a Metadata.t stored by the engine (internal encoding). The text may have come over the
 * command bus from anyone who can publish there, so it is checked like a request.
 */
export function decodeMetadataJson(json: string): Metadata {
  return MetadataT.decode(parseUntrustedJson(json, 'metadata'), 'metadata');
}
