/** Dynamic ids, barriers and change values (API.md §4.10) and the UPDATES.get result (§7.7). */
import { int, list, option, string, tuple, variant, type Infer } from './descriptor.js';
import { PciStateT, PciT, VbdStateT, VbdT, VgpuStateT, VgpuT, VifStateT, VifT, VusbStateT, VusbT } from './devices.js';
import { DeviceIdT, VmIdT } from './shared.js';
import { TaskT } from './task.js';
import { VmStateT, VmT } from './vm.js';

export const DynamicIdT = variant('Dynamic.id', {
  Vm: VmIdT,
  Vbd: DeviceIdT,
  Vif: DeviceIdT,
  Pci: DeviceIdT,
  Vgpu: DeviceIdT,
  Vusb: DeviceIdT,
  Task: string,
});
export type DynamicId = Infer<typeof DynamicIdT>;

/** `[barrier id, ids]`. */
export const BarrierT = tuple(int, list(DynamicIdT));
export type Barrier = Infer<typeof BarrierT>;

/** `UPDATES.get` result: `[barriers, ids, next_id]`. */
export const UpdatesResultT = tuple(list(BarrierT), list(DynamicIdT), int);
export type UpdatesResult = Infer<typeof UpdatesResultT>;

/** The object's value after a change; the option is `[]` (None) when the object was removed. */
export const DynamicT = variant('Dynamic.t', {
  Vm_t: tuple(VmIdT, option(tuple(VmT, VmStateT))),
  Vbd_t: tuple(DeviceIdT, option(tuple(VbdT, VbdStateT))),
  Vif_t: tuple(DeviceIdT, option(tuple(VifT, VifStateT))),
  Pci_t: tuple(DeviceIdT, option(tuple(PciT, PciStateT))),
  Vgpu_t: tuple(DeviceIdT, option(tuple(VgpuT, VgpuStateT))),
  Vusb_t: tuple(DeviceIdT, option(tuple(VusbT, VusbStateT))),
  Task_t: tuple(string, option(TaskT)),
});
export type DynamicChange = Infer<typeof DynamicT>;
