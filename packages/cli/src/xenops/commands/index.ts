/** Every command, in the order `xenops --help` lists them. */
import type { Command } from '../command.js';
import { add, create } from './add.js';
import { log, verify } from './audit.js';
import { backup, restore } from './backup.js';
import { completion } from './completion.js';
import { consoleCmd, screenshot } from './console.js';
import { disk, nic } from './devices.js';
import { events } from './events.js';
import { hosts } from './hosts.js';
import { diagnostics, query } from './info.js';
import { pause, reboot, shutdown, start, unpause } from './lifecycle.js';
import { list } from './list.js';
import { evacuate, migrate } from './migration.js';
import { exportCmd, importCmd } from './metadata.js';
import { remove } from './remove.js';
import { memory, vcpus } from './resources.js';
import { stat } from './stat.js';
import { resume, suspend } from './suspend.js';
import { taskCancel, tasks } from './tasks.js';

export const GROUPS: ReadonlyArray<readonly [string, readonly Command[]]> = [
  ['VMs', [list, stat, add, create, remove, exportCmd, importCmd]],
  ['Power', [start, shutdown, reboot, pause, unpause, suspend, resume, migrate]],
  ['Consoles', [consoleCmd, screenshot]],
  ['Resources and devices', [vcpus, memory, disk, nic]],
  ['Tasks and events', [tasks, taskCancel, events, log, verify]],
  ['Service', [query, diagnostics, hosts, evacuate, backup, restore, completion]],
];

export const COMMANDS: readonly Command[] = GROUPS.flatMap(([, cs]) => cs);

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
