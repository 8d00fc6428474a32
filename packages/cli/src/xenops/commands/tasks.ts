/** `xenops tasks` and `xenops task-cancel` (API.md §4.9, §7.1). */
import type { Command } from '../command.js';
import { paintTaskState } from '../format/colour.js';
import { renderTable } from '../format/table.js';
import { formatAge, formatDuration } from '../format/units.js';
import { call, type TaskRecord } from '../wait.js';

function describeState(t: TaskRecord): [string, string] {
  const [s, d] = t.state;
  if (s === 'Pending') return [s, `${Math.floor(Number(d) * 100)}%`];
  if (s === 'Completed') return [s, formatDuration(Number((d as { duration: number }).duration) || 0)];
  return [s, typeof d === 'string' ? d : JSON.stringify(d)];
}

export const tasks: Command = {
  name: 'tasks',
  summary: 'list the tasks (running and finished, until destroyed)',
  usage: 'tasks',
  examples: ['xenops tasks', 'xenops tasks --json'],
  args: { min: 0, max: 0 },
  async run(ctx) {
    const list = await call<TaskRecord[]>(ctx, 'Task.list', {}, { op: 'tasks' });
    if (ctx.json) return ctx.printJson(list);
    if (list.length === 0) return ctx.note('no tasks');
    const now = Date.now() / 1000;
    const rows = list.map((t) => {
      const [s, detail] = describeState(t);
      return [t.id, paintTaskState(ctx.paint, s), detail, formatAge(now - t.ctime), t.dbg];
    });
    ctx.out(renderTable([{ header: 'ID', align: 'right' }, 'STATE', 'PROGRESS/RESULT', { header: 'AGE', align: 'right' }, 'DEBUG'], rows));
  },
};

export const taskCancel: Command = {
  name: 'task-cancel',
  summary: 'cancel a running task',
  usage: 'task-cancel TASK',
  description: 'The task fails with Cancelled and its VM is put back as it was (API.md §7.1).',
  examples: ['xenops task-cancel 42'],
  args: { min: 1, max: 1 },
  complete: ['task'],
  async run(ctx, [id]) {
    await call(ctx, 'Task.cancel', { id }, { op: 'task-cancel' });
    if (ctx.json) ctx.printJson({ task: id, cancel_requested: true });
    else ctx.out(`Asked task ${id} to cancel`);
  },
};
