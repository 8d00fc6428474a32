/** `xenops events`: what changes, live, from UPDATES.get (API.md §7.7). */
import { usageError } from '../errors.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { RpcFailure } from '../client/rpc.js';
import { explain } from '../explain.js';
import { paintPower, paintTaskState } from '../format/colour.js';
import { resolveVm, listVms } from '../resolve.js';
import { parseNonNegative, parsePositiveInt, str } from './common.js';

type DynamicId = [string, unknown];

async function describe(ctx: Context, id: DynamicId, names: Map<string, string>): Promise<{ kind: string; object: string; vm?: string; text: string; value?: unknown }> {
  const [kind, key] = id;
  const rpc = ctx.rpc();
  const stat = async (method: string, arg: unknown) => {
    try {
      return await rpc.call<unknown>(method, { id: arg });
    } catch (e) {
      if (e instanceof RpcFailure && e.tag === 'Does_not_exist') return undefined;
      throw e;
    }
  };
  if (kind === 'Vm') {
    const vm = String(key);
    const v = (await stat('VM.stat', vm)) as [Record<string, unknown>, Record<string, unknown>] | undefined;
    if (v) names.set(vm, String(v[0].name));
    const name = names.get(vm) ?? vm;
    return { kind: 'vm', object: name, vm, text: v ? paintPower(ctx.paint, String(v[1].power_state)) : 'removed', value: v };
  }
  if (kind === 'Task') {
    const t = (await stat('Task.stat', String(key))) as { state: [string, unknown]; dbg: string } | undefined;
    const text = t ? `${paintTaskState(ctx.paint, t.state[0])}${t.state[0] === 'Pending' ? ` ${Math.floor(Number(t.state[1]) * 100)}%` : ''} (${t.dbg})` : 'destroyed';
    return { kind: 'task', object: String(key), text, value: t };
  }
  const [vm, dev] = key as [string, string];
  const method = `${kind.toUpperCase()}.stat`;
  const d = (await stat(method, [vm, dev])) as [unknown, { plugged?: boolean }] | undefined;
  const word = { Vbd: 'disk', Vif: 'nic', Pci: 'pci', Vgpu: 'vgpu', Vusb: 'vusb' }[kind] ?? kind.toLowerCase();
  return { kind: word, object: `${names.get(vm) ?? vm}/${dev}`, vm, text: d ? (d[1].plugged ? 'plugged' : 'unplugged') : 'removed', value: d };
}

export const events: Command = {
  name: 'events',
  aliases: ['watch'],
  summary: 'print changes to VMs, devices and tasks as they happen',
  usage: 'events [--vm VM] [--since ID] [--count N] [--timeout S]',
  description: 'Follows UPDATES.get. Each line: time, kind, object, new state. --json prints one JSON object per line.',
  options: {
    vm: { type: 'string', value: 'VM', description: 'only this VM and its devices' },
    since: { type: 'string', value: 'ID', description: 'start after this UPDATES id (0 = everything that exists); default: only new changes' },
    count: { type: 'string', value: 'N', description: 'stop after N changes' },
    timeout: { type: 'string', value: 'S', description: 'stop after S seconds' },
  },
  examples: ['xenops events', 'xenops events --vm web01', 'xenops events --since 0 --count 10 --json'],
  args: { min: 0, max: 0 },
  async run(ctx, _p, values) {
    const count = values.count !== undefined ? parsePositiveInt(str(values.count)!, '--count') : Infinity;
    const timeout = parseNonNegative(str(values.timeout), '--timeout');
    const since = str(values.since);
    if (since !== undefined && !/^\d+$/.test(since)) throw usageError(`--since expects an UPDATES id (a whole number), not "${since}"`);
    const rpc = ctx.rpc();
    const vmFilter = str(values.vm) ? (await resolveVm(ctx, str(values.vm)!)).id : undefined;
    const names = new Map((await listVms(ctx)).map((v) => [v.id, v.name] as const));
    const wrap = async <T>(p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (e) {
        if (e instanceof RpcFailure) throw explain(e.error, { op: 'events' });
        throw e;
      }
    };
    let last = since !== undefined ? Number(since) : await wrap(rpc.call<number>('UPDATES.last_id', {}));
    const deadline = timeout !== undefined ? Date.now() + timeout * 1000 : Infinity;
    let printed = 0;
    if (!ctx.json) ctx.note(`watching for changes after ${last}${timeout !== undefined ? ` for ${timeout} s` : ''} (Ctrl-C stops)`);
    while (printed < count && Date.now() < deadline) {
      const wait = Math.max(0, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
      const [, ids, next] = await wrap(rpc.call<[unknown[], DynamicId[], number]>('UPDATES.get', { last_id: last, timeout: wait }, (wait + 15) * 1000));
      for (const id of ids) {
        const d = await describe(ctx, id, names);
        if (vmFilter && d.vm !== vmFilter) continue;
        const time = new Date().toISOString().slice(11, 23);
        if (ctx.json) ctx.out(JSON.stringify({ time: new Date().toISOString(), id, kind: d.kind, object: d.object, value: d.value ?? null }));
        else ctx.out(`${time}  ${d.kind.padEnd(4)}  ${d.object}  ${d.text}`);
        if (++printed >= count) break;
      }
      last = next;
    }
  },
};
