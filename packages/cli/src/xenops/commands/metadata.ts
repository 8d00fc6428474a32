/** `xenops export` / `xenops import`: whole-VM metadata (API.md §4.8, §7.9). */
import { readFileSync, writeFileSync } from 'node:fs';
import { CliError, ExitCode } from '../errors.js';
import type { Command } from '../command.js';
import { resolveVm, label } from '../resolve.js';
import { call } from '../wait.js';
import { str } from './common.js';

export const exportCmd: Command = {
  name: 'export',
  summary: "print a VM's metadata (configuration and devices) as JSON",
  usage: 'export VM [-o FILE]',
  options: { output: { type: 'string', short: 'o', value: 'FILE', description: 'write to FILE instead of standard output' } },
  examples: ['xenops export web01 > web01.json', 'xenops export web01 -o web01.json'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  async run(ctx, [q], values) {
    const vm = await resolveVm(ctx, q!);
    const text = await call<string>(ctx, 'VM.export_metadata', { id: vm.id }, { op: 'export', vm: label(vm) });
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* print as received */
    }
    const out = str(values.output);
    if (out) {
      try {
        writeFileSync(out, `${pretty}\n`);
      } catch (e) {
        throw new CliError(`cannot write ${out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.USAGE);
      }
      if (ctx.json) ctx.printJson({ id: vm.id, file: out });
      else ctx.note(`Exported VM ${label(vm)} to ${out}`);
    } else ctx.out(pretty);
  },
};

export const importCmd: Command = {
  name: 'import',
  summary: 'import VM metadata written by export (overwrites a VM with the same uuid)',
  usage: 'import FILE',
  description: "FILE is the JSON written by 'xenops export' (a Metadata.t); '-' reads standard input.",
  examples: ['xenops import web01.json', 'xenops export web01 | xenops --url http://host-b:8440 import -'],
  args: { min: 1, max: 1 },
  complete: ['file'],
  async run(ctx, [file]) {
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file!, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.USAGE);
    }
    try {
      JSON.parse(text);
    } catch (e) {
      throw new CliError(`${file} is not JSON metadata: ${(e as Error).message}`, ExitCode.USAGE);
    }
    const id = await call<string>(ctx, 'VM.import_metadata', { metadata: text }, { op: 'import' });
    if (ctx.json) ctx.printJson({ id });
    else ctx.out(`Imported VM ${id}`);
  },
};
