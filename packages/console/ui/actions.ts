/**
 * The power actions an operator can take on a VM (API.md §5.2), and running one: the call returns
 * a task, which the activity panel follows to its end through the change stream.
 */
import { call, RpcError } from './api.js';
import { consoleState, taskEnded } from './state.js';

export interface ActionSpec {
  readonly key: string;
  readonly label: string;
  /** Power states in which the action makes sense (the table offers it only then). */
  readonly when: readonly string[];
  /** Asks for an image path first (suspend, resume). */
  readonly needsImage?: boolean;
  readonly run: (id: string, image?: string) => Promise<string>;
  /**
   * VM.start and VM.resume leave the VM Paused (API.md §5.2, as xenopsd): like `xenops start`,
   * the console then lets it run with this second call once the first task has completed.
   */
  readonly then?: ActionSpec;
}

const unpause: ActionSpec = { key: 'unpause', label: 'Unpause', when: ['Paused'], run: (id) => call('VM.unpause', { id }) };

/** A clean shutdown or reboot waits this long for the guest before it fails (§7.4). */
const CLEAN_TIMEOUT_S = 60;

export const ACTIONS: readonly ActionSpec[] = [
  { key: 'start', label: 'Start', when: ['Halted'], run: (id) => call('VM.start', { id, paused: false }), then: unpause },
  { key: 'shutdown', label: 'Shut down', when: ['Running', 'Paused'], run: (id) => call('VM.shutdown', { id, delay: CLEAN_TIMEOUT_S }) },
  { key: 'force-shutdown', label: 'Force off', when: ['Running', 'Paused', 'Suspended'], run: (id) => call('VM.shutdown', { id }) },
  { key: 'reboot', label: 'Reboot', when: ['Running', 'Paused'], run: (id) => call('VM.reboot', { id, delay: CLEAN_TIMEOUT_S }) },
  { key: 'force-reboot', label: 'Force reboot', when: ['Running', 'Paused'], run: (id) => call('VM.reboot', { id }) },
  { key: 'pause', label: 'Pause', when: ['Running'], run: (id) => call('VM.pause', { id }) },
  unpause,
  { key: 'suspend', label: 'Suspend', when: ['Running', 'Paused'], needsImage: true, run: (id, image) => call('VM.suspend', { id, suspend_vdi: ['Local', image] }) },
  { key: 'resume', label: 'Resume', when: ['Suspended'], needsImage: true, run: (id, image) => call('VM.resume', { id, suspend_vdi: ['Local', image] }), then: unpause },
];

/** VM.migrate to `host` (API.md §7.8): live, the VM keeps its power state; its own host gives a new domain there. */
export function migrateAction(host: string): ActionSpec {
  return {
    key: 'migrate',
    label: `Migrate to ${host}`,
    when: ['Running', 'Paused'],
    run: (id) => call('VM.migrate', { id, vdi_map: {}, vif_map: {}, pci_map: {}, xenops_url: `xenops://${host}`, compress: false, verify_dest: false, localhost_migration: false }),
  };
}

/** Runs `spec` on the VM and records it for the activity panel (its task, or the call's error). */
export async function runAction(spec: ActionSpec, vmId: string, vmName: string, image?: string): Promise<void> {
  const base = { vmId, vmName, label: spec.label, started: Date.now() };
  let taskId: string;
  try {
    taskId = await spec.run(vmId, image);
    consoleState.track({ ...base, taskId });
  } catch (e) {
    consoleState.track({ ...base, error: e instanceof RpcError ? e.message : `${(e as Error).message}` });
    return;
  }
  if (spec.then && (await taskEnded(taskId)).state[0] === 'Completed') await runAction(spec.then, vmId, vmName);
}
