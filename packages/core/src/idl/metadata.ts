/** `Metadata.t`, the whole-VM export (API.md §4.8, §7.9; seed shape §4.12). */
import { field, joinPath, list, lookupKey, option, record, string, type Dialect, type Infer, type RecordType } from './descriptor.js';
import { PciT, VbdT, VgpuT, VifT, VusbT, decodeVbd } from './devices.js';
import { VmT } from './vm.js';

const NOT_SEED: readonly Dialect[] = ['xenopsd', 'internal'];

const MetadataBaseT = record('Metadata.t', {
  vm: VmT,
  vbds: field(list(VbdT), { default: [] }),
  vifs: field(list(VifT), { default: [] }),
  pcis: field(list(PciT), { default: [] }),
  vgpus: field(list(VgpuT), { default: [], dialects: NOT_SEED }),
  vusbs: field(list(VusbT), { default: [], dialects: NOT_SEED }),
  /** Opaque backend state; importers must not interpret it. */
  domains: option(string),
});
export type Metadata = Infer<typeof MetadataBaseT>;

/**
 * Like a plain record, but VBDs are decoded knowing whether the VM is HVM, so that a seed integer
 * position n < 4 becomes `["Ide", n, 0]` (§4.12).
 */
export const MetadataT: RecordType<Metadata> = {
  ...MetadataBaseT,
  decode(w, path) {
    const m = MetadataBaseT.decode(w, path);
    if (m.vm.ty[0] !== 'HVM' || m.vbds.length === 0) return m;
    let raw = lookupKey(w, 'vbds');
    if (Array.isArray(raw) && raw.length === 1 && Array.isArray(raw[0])) raw = raw[0]; // [x] option-style wrapper
    if (!Array.isArray(raw)) return m;
    const vbdsPath = joinPath(path, 'vbds');
    return { ...m, vbds: raw.map((x, i) => decodeVbd(x, joinPath(vbdsPath, i), { vmIsHvm: true })) };
  },
};
