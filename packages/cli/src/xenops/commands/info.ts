/** `xenops query` and `xenops diagnostics` (API.md §4.11, §7.11). */
import type { Command } from '../command.js';
import { renderFields } from '../format/table.js';
import { call } from '../wait.js';

export const query: Command = {
  name: 'query',
  aliases: ['version-server'],
  summary: 'show what the server is: name, vendor, version, features, instance id',
  usage: 'query',
  examples: ['xenops query', 'xenops --socket /var/lib/xcp/xenopsd query --json'],
  args: { min: 0, max: 0 },
  async run(ctx) {
    const q = await call<Record<string, unknown>>(ctx, 'query', { unit: null }, { op: 'query' });
    if (ctx.json) return ctx.printJson(q);
    ctx.out(
      renderFields([
        ['name', String(q.name)],
        ['vendor', String(q.vendor)],
        ['version', String(q.version)],
        ['features', ((q.features as string[]) ?? []).join(', ')],
        ['instance', String(q.instance_id)],
        ['server', ctx.rpc().transport.describe],
      ]),
    );
  },
};

export const diagnostics: Command = {
  name: 'diagnostics',
  summary: "print the server's diagnostics (queues, workers, tasks) as JSON",
  usage: 'diagnostics',
  examples: ['xenops diagnostics'],
  args: { min: 0, max: 0 },
  async run(ctx) {
    const text = await call<string>(ctx, 'get_diagnostics', { unit: null }, { op: 'diagnostics' });
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      /* not JSON: print as is */
    }
    if (typeof value === 'string') ctx.out(value);
    else ctx.printJson(value);
  },
};
