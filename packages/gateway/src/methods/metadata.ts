import {
  Errors,
  MetadataT,
  IllFormedStringError,
  NestingLimitError,
  normaliseDevice,
  parseUntrustedJson,
  singleLine,
  wireToJson,
  type ApiDialect,
  type Metadata,
  type SeedMethods,
  type XenopsdMethods,
} from '@xenops/core';
import type { CallContext, SomeHandlers } from './method.js';
import { importVm, runQueued, submitOperation } from './vm-calls.js';

/**
 * Export (API.md §7.9): the JSON text of a Metadata.t in the caller's dialect. `domains` is present
 * only while the VM has a domain: the simulator's JSON record of it, opaque to importers.
 */
function exportMetadata(call: CallContext, vmId: string): string {
  const vm = call.gateway.projection.vms.get(vmId);
  if (!vm?.config) throw Errors.vmDoesNotExist(vmId);
  // Device lists in the order of the list calls: ascending device name (§7.9).
  const configs = <C>(table: ReadonlyMap<string, { config: C }>) => [...table].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e.config);
  const metadata: Metadata = {
    vm: vm.config,
    vbds: configs(vm.devices.vbd),
    vifs: configs(vm.devices.vif),
    pcis: configs(vm.devices.pci),
    vgpus: configs(vm.devices.vgpu),
    vusbs: configs(vm.devices.vusb),
    ...(vm.domain ? { domains: JSON.stringify(vm.domain) } : {}),
  };
  return wireToJson(MetadataT.encode(metadata, call.dialect));
}

/** Parses an import document; any failure is an Internal_error of the call, before anything changes. */
function parseMetadata(text: string, dialect: ApiDialect): Metadata {
  let wire;
  try {
    // A document inside an argument is checked like a request body: nesting, then every string.
    wire = parseUntrustedJson(text, 'metadata');
  } catch (e) {
    if (e instanceof NestingLimitError || e instanceof IllFormedStringError) throw Errors.internal(e.message);
    throw Errors.internal(`import_metadata: the metadata is not valid JSON: ${singleLine((e as Error).message)}`);
  }
  const decoded = MetadataT.decode(wire, 'metadata');
  // The same checks as the add calls: no bad device record gets in through an import either.
  const vifs = decoded.vifs.map((config, i) => normaliseDevice({ kind: 'vif', config }, `metadata.vifs[${i}]`).config as Metadata['vifs'][number]);
  decoded.pcis.forEach((config, i) => normaliseDevice({ kind: 'pci', config }, `metadata.pcis[${i}]`));
  decoded.vgpus.forEach((config, i) => normaliseDevice({ kind: 'vgpu', config }, `metadata.vgpus[${i}]`));
  const metadata: Metadata = { ...decoded, vifs };
  // Only the seed dialect carries `transient` (§4.2): a xenopsd import is never transient.
  return dialect === 'seed' ? metadata : { ...metadata, vm: { ...metadata.vm, transient: false } };
}

const metadataJsonOf = (m: Metadata) => wireToJson(MetadataT.encode(m, 'internal'));

export const metadataHandlers = {
  'VM.export_metadata': async (call, a) => exportMetadata(call, a.id),
  'VM.import_metadata': async (call, a) => {
    const metadata = parseMetadata(a.metadata, 'xenopsd');
    const { id } = metadata.vm;
    // An existing VM is imported on its queue (S/q); a new one is written at once.
    if (call.gateway.projection.vms.get(id)?.config) {
      await runQueued(call, id, { kind: 'VM.import_metadata', metadataJson: metadataJsonOf(metadata) });
      return id;
    }
    return importVm(call, id, metadataJsonOf(metadata), false);
  },
  'VM.import_metadata_async': async (call, a) => {
    const metadata = parseMetadata(a.metadata, 'xenopsd');
    return submitOperation(call, metadata.vm.id, { kind: 'VM.import_metadata', metadataJson: metadataJsonOf(metadata) }, { mayCreate: true });
  },
} satisfies SomeHandlers<XenopsdMethods>;

export const seedMetadataHandlers = {
  'Vm.export_metadata': async (call, a) => exportMetadata(call, a.id),
  'Vm.import_metadata': async (call, a) => {
    const metadata = parseMetadata(a.config, 'seed');
    return importVm(call, metadata.vm.id, metadataJsonOf(metadata), true);
  },
} satisfies SomeHandlers<SeedMethods>;
