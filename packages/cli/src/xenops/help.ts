/** `xenops --help` and `xenops COMMAND --help`. */
import type { Command, OptionSpec } from './command.js';
import { GROUPS } from './commands/index.js';
import { EXIT_CODE_TABLE } from './errors.js';
import { GLOBAL_OPTIONS } from './global-options.js';

function optionLines(opts: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [flag, o.description] as const;
  });
  const w = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(w)}  ${d}`);
}

export function globalHelp(version: string): string {
  const lines = [
    `xenops ${version}: command line for the xenops VM service (xenopsd)`,
    '',
    'Usage: xenops [OPTIONS] COMMAND [ARGS]',
    '',
  ];
  const w = Math.max(...GROUPS.flatMap(([, cs]) => cs.map((c) => c.name.length)));
  for (const [group, cs] of GROUPS) {
    lines.push(`${group}:`);
    for (const c of cs) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
    lines.push('');
  }
  lines.push('Options (any command):', ...optionLines(GLOBAL_OPTIONS), '');
  lines.push(
    'VMs are named by uuid, a unique uuid prefix, or name.',
    '',
    'Connection (first that applies): --nats, --socket, --url, env XENOPS_SOCKET, env XENOPS_URL,',
    'then http://127.0.0.1:8440 (the default of xenopsd --listen). Give at most one of the flags.',
    'Start the service with `npm start` in the xenops-ts checkout, or `xenopsd`.',
    '',
    'Exit codes:',
    ...EXIT_CODE_TABLE.map(([c, d]) => `  ${String(c).padStart(3)}  ${d}`),
    '',
    'Examples:',
    '  xenops create web01.cfg          # add the VM from an xl config file and start it',
    '  xenops list',
    '  xenops shutdown web01 --timeout 30',
    '  xenops --socket ~/.local/state/xenops-ts/xenopsd.sock stat web01 --json',
    '',
    "Run 'xenops COMMAND --help' for a command's options and examples.",
    '',
  );
  return lines.join('\n');
}

export function commandHelp(c: Command): string {
  const usage = Array.isArray(c.usage) ? c.usage : [c.usage];
  const lines = [`Usage: ${usage.map((u, i) => `${i ? '       ' : ''}xenops ${u}`).join('\n')}`, '', `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.`];
  if (c.aliases?.length) lines.push(`Aliases: ${c.aliases.join(', ')}`);
  if (c.description) lines.push('', c.description);
  if (c.options && Object.keys(c.options).length) lines.push('', 'Options:', ...optionLines(c.options));
  const global = Object.fromEntries(Object.entries(GLOBAL_OPTIONS).filter(([k]) => k !== 'no-wait' || c.tasks));
  lines.push('', 'Global options:', ...optionLines(global));
  lines.push('', 'Examples:', ...c.examples.map((e) => `  ${e}`), '');
  return lines.join('\n');
}
