/**
 * Helpers for the device suites (VBD, VIF, PCI, VGPU, VUSB; API.md §4.4–§4.7, §5.2, §7.6):
 * record builders with the documented defaults filled in, typed wrappers for the device calls,
 * and small observers (plug state of every device of a VM, the order UPDATES reports changes in).
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { X, type RpcClient } from './rpc.js';
import { waitEnd, type TaskEnd } from './ops.js';

export type DevId = [string, string];
export type Pair = [Record<string, unknown>, Record<string, unknown>];
export type Module = 'VBD' | 'VIF' | 'PCI' | 'VGPU' | 'VUSB';
export const MODULES: readonly Module[] = ['VBD', 'VIF', 'PCI', 'VGPU', 'VUSB'];

/** The record argument key of `<M>.add`. */
export const addKey = (m: Module): string => m.toLowerCase();

// ---------------------------------------------------------------------------------------------
// Records as the service reports them: the input plus every documented default (§4.4–§4.7).

/** `Vbd.t` with the defaults of §4.4 (None options left out). */
export function vbdFull(vm: string, dev: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: [vm, dev],
    mode: 'ReadWrite',
    ty: 'Disk',
    unpluggable: true,
    extra_backend_keys: {},
    extra_private_keys: {},
    persistent: true,
    can_attach_early: false,
    ...over,
  };
}

/** `Vif.t` with the defaults of §4.5. */
export function vifFull(vm: string, dev: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: [vm, dev],
    position: 0,
    mac: 'fe:ff:ff:ff:ff:ff',
    carrier: true,
    mtu: 1500,
    backend: ['Local', 'xenbr0'],
    other_config: {},
    locking_mode: 'Unlocked',
    extra_private_keys: {},
    ipv4_configuration: 'Unspecified4',
    ipv6_configuration: 'Unspecified6',
    trunks: [],
    ...over,
  };
}

export const pciAddr = (domain: number, bus: number, dev: number, fn: number) => ({ domain, bus, dev, fn });

/** A `Pci.t` (every key but the options is required, §4.6). */
export function pciRec(vm: string, dev: string, position: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: [vm, dev], position, address: pciAddr(0, 3, position, 0), ...over };
}

/** `Vgpu.t` with the defaults of §4.7. */
export function vgpuFull(vm: string, dev: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: [vm, dev], position: 0, physical_pci_address: pciAddr(0, 0, 0, 0), implementation: 'Empty', ...over };
}

/** A `Vusb.t` (all keys required, §4.7). */
export function vusbRec(vm: string, dev: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: [vm, dev], hostbus: '1', hostport: '2', version: '2.0', path: '/dev/bus/usb/001/002', speed: 480.5, ...over };
}

/** Unplugged states (§4.4–§4.7). */
export const UNPLUGGED: Record<Module, Record<string, unknown>> = {
  VBD: { active: false, plugged: false },
  VIF: { active: false, plugged: false, kthread_pid: 0, media_present: false, pvs_rules_active: false },
  PCI: { plugged: false },
  VGPU: { active: false, plugged: false },
  VUSB: { plugged: false },
};

/** A plugged VBD state (§8.1): QoS and medium as configured. */
export function vbdPlugged(cfg: { qos?: unknown; backend?: unknown } = {}): Record<string, unknown> {
  return {
    active: true,
    plugged: true,
    ...(cfg.qos === undefined ? {} : { qos_target: cfg.qos }),
    ...(cfg.backend === undefined ? {} : { backend_present: cfg.backend }),
  };
}

/** A plugged VIF state (§8.1). */
export const vifPlugged = (domid: number, position: number): Record<string, unknown> => ({
  active: true,
  plugged: true,
  kthread_pid: 0,
  media_present: true,
  device: `vif${domid}.${position}`,
  pvs_rules_active: false,
});

// ---------------------------------------------------------------------------------------------
// Calls

export const add = (c: RpcClient, m: Module, rec: Record<string, unknown>): Promise<DevId> => c.ok<DevId>(`${m}.add`, X({ [addKey(m)]: rec }));
export const devStat = (c: RpcClient, m: Module, id: DevId): Promise<Pair> => c.ok<Pair>(`${m}.stat`, X({ id }));
export const devList = (c: RpcClient, m: Module, vm: string): Promise<Pair[]> => c.ok<Pair[]>(`${m}.list`, X({ id: vm }));
export const names = async (c: RpcClient, m: Module, vm: string): Promise<string[]> =>
  (await devList(c, m, vm)).map(([cfg]) => (cfg.id as DevId)[1]);

/** Submits a T call and waits for its end (xenopsd dialect). */
export async function runT(c: RpcClient, method: string, args: Record<string, unknown>, timeoutMs?: number): Promise<TaskEnd> {
  return waitEnd(c, 'xenopsd', await c.ok<string>(method, X(args)), timeoutMs);
}

/** Every device list of a VM, for "nothing changed" comparisons. */
export async function snapshot(c: RpcClient, vm: string): Promise<Record<Module, Pair[]>> {
  const out = {} as Record<Module, Pair[]>;
  for (const m of MODULES) out[m] = await devList(c, m, vm);
  return out;
}

/** Names of the devices of one kind whose state says plugged. */
export async function pluggedNames(c: RpcClient, m: Module, vm: string): Promise<string[]> {
  return (await devList(c, m, vm)).filter(([, st]) => st.plugged === true).map(([cfg]) => (cfg.id as DevId)[1]);
}

export const trigger = (c: RpcClient, cmd: string, args: string[]) => c.named('DEBUG.trigger', X({ cmd, args }));

/** `DEBUG.trigger "check-vbd-plug-ordering" [vm]` must answer unit. */
export async function expectPlugOrderingOk(c: RpcClient, vm: string): Promise<void> {
  const o = await trigger(c, 'check-vbd-plug-ordering', [vm]);
  expect(o, `check-vbd-plug-ordering: ${JSON.stringify(o)}`).toMatchObject({ ok: true, value: null });
}

export const UPDATES_KINDS = ['Vm', 'Vbd', 'Vif', 'Pci', 'Vgpu', 'Vusb', 'Task'] as const;

/**
 * The Dynamic ids UPDATES reports as changed after `lastId`, ordered by the seq of their last
 * change (§7.7): a device's position in this list is when it last changed (for a plugged device,
 * when it was plugged).
 */
export async function changedSince(c: RpcClient, lastId: number): Promise<Array<[string, unknown]>> {
  const [, ids] = await c.ok<[unknown, Array<[string, unknown]>, number]>('UPDATES.get', X({ last_id: lastId, timeout: 0 }));
  return ids;
}

/** xenopsd's derived MAC (§7.6): SHA-256 of `"<vm>/<position>"`, first byte made local unicast. */
export function derivedMac(vm: string, position: number): string {
  const b = createHash('sha256').update(`${vm}/${position}`).digest().subarray(0, 6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export const isLocalUnicastMac = (mac: string): boolean => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) && (parseInt(mac.slice(0, 2), 16) & 0x03) === 0x02;

/** Device `Does_not_exist` keys (§6.2). */
export const dneDev = (m: Module, vm: string, dev: string) => ['Does_not_exist', [m === 'PCI' ? 'PCI' : 'VM', `${vm}/${m.toLowerCase()}.${dev}`]];
export const dneAddVm = (vm: string) => ['Does_not_exist', ['VM', vm]];
