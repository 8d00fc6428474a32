/**
 * `xenops log` and `xenops verify`: the audit history (API.md §9.5). They need the audit
 * endpoints of issue 5, which no server offers yet; until then they say so and exit 7.
 */
import type { Command } from '../command.js';
import { notAvailable } from './common.js';

export const log: Command = {
  name: 'log',
  summary: 'print the audit history (who did what, when), filterable by VM, task and seq range',
  usage: 'log [--vm VM] [--task ID] [--since SEQ] [--until SEQ]',
  options: {
    vm: { type: 'string', value: 'VM', description: 'only events of this VM and its devices' },
    task: { type: 'string', value: 'ID', description: 'only events of this task' },
    since: { type: 'string', value: 'SEQ', description: 'from this log sequence number' },
    until: { type: 'string', value: 'SEQ', description: 'up to this log sequence number' },
  },
  examples: ['xenops log --vm web01', 'xenops log --since 100 --until 200 --json'],
  args: { min: 0, max: 0 },
  async run() {
    throw notAvailable('the audit history', 'it needs the audit endpoints of issue 5');
  },
};

export const verify: Command = {
  name: 'verify',
  summary: 'check the integrity of the audit log',
  usage: 'verify',
  examples: ['xenops verify'],
  args: { min: 0, max: 0 },
  async run() {
    throw notAvailable('audit log verification', 'it needs the audit endpoints of issue 5');
  },
};
