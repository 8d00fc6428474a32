/** Shared types of API.md §4.1 and the id types. */
import type { PowerState } from '../errors.js';
import { adapt, id, int, outOfRange, record, string, tuple, variant, type Infer, type Type } from './descriptor.js';

/** A VM id (non-empty string). */
export const VmIdT = id;

/** A device id `[vm, device name]`; both parts non-empty. */
export const DeviceIdT = tuple(id, id);
export type DeviceId = Infer<typeof DeviceIdT>;

export const PowerStateT: Type<PowerState> = variant('power_state', {
  Running: null,
  Halted: null,
  Suspended: null,
  Paused: null,
});

export const DiskT = variant('disk', { Local: string, VDI: string });
export type Disk = Infer<typeof DiskT>;

export const PciAddressT = record('Pci.address', { domain: int, bus: int, dev: int, fn: int });
export type PciAddress = Infer<typeof PciAddressT>;

/** `Remote` holds (vm id, switch); the seed's `Remote s` (a bare switch name) is read as `["", s]`. */
const RemoteT = adapt(tuple(string, string), {
  accept: (w) => (typeof w === 'string' ? ['', w] : w),
});

export const NetworkT = adapt(variant('Network.t', { Local: string, Remote: RemoteT, Sriov: PciAddressT }), {
  encodeIn: {
    // §4.12: the seed knows only Local and Remote-by-switch-name.
    seed: (v) => {
      if (v[0] === 'Local') return ['Local', v[1]];
      if (v[0] === 'Remote') return ['Remote', v[1][1]];
      return ['Local', ''];
    },
  },
});
export type Network = Infer<typeof NetworkT>;

export const DeviceBusT = variant('Device_number.bus_type', { Xen: null, Scsi: null, Floppy: null, Ide: null });

/** Inclusive (disk, partition) limits per bus (§4.1). */
const DEVICE_LIMITS: Record<Infer<typeof DeviceBusT>, readonly [number, number]> = {
  Xen: [1048575, 15],
  Scsi: [15, 15],
  Floppy: [2, 0],
  Ide: [19, 63],
};

/**
 * `[bus, disk, partition]` with the range checks of §4.1. A bare integer n (the seed's VBD
 * position) is read as `["Xen", n, 0]`; see `decodeVbd` for the HVM rule.
 */
export const DeviceNumberT = adapt(tuple(DeviceBusT, int, int), {
  name: 'Device_number',
  accept: (w) => (typeof w === 'number' || (typeof w === 'string' && /^\s*[+-]?\d+\s*$/.test(w)) ? ['Xen', w, 0] : w),
  check(v, path) {
    const [bus, disk, partition] = v;
    const [maxDisk, maxPartition] = DEVICE_LIMITS[bus];
    if (disk < 0 || disk > maxDisk) throw outOfRange(path, `${bus} disk must be 0..${maxDisk}`);
    if (partition < 0 || partition > maxPartition) throw outOfRange(path, `${bus} partition must be 0..${maxPartition}`);
    return v;
  },
});
export type DeviceNumber = Infer<typeof DeviceNumberT>;

/** Whether a wire value is the seed's bare-integer VBD position (as opposed to a Device_number). */
export function isBareDiskNumber(w: unknown): boolean {
  if (Array.isArray(w) && w.length === 1) w = w[0];
  return typeof w === 'number' || (typeof w === 'string' && /^\s*[+-]?\d+\s*$/.test(w));
}

