/** `xenops`: parses the command line, runs the command, prints failures as one line, exits. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command, OptionSpec, Values } from './command.js';
import { COMMANDS, findCommand } from './commands/index.js';
import { Context, type Io } from './context.js';
import { CliError, ExitCode } from './errors.js';
import { explain } from './explain.js';
import { RpcFailure } from './client/rpc.js';
import { GLOBAL_OPTIONS } from './global-options.js';
import { commandHelp, globalHelp } from './help.js';

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

const STRING_GLOBALS = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === 'string').map(([k]) => `--${k}`));

/** Index of the command name: the first word that is not an option or a global option's value. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (STRING_GLOBALS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return i;
  }
  return -1;
}

function toParseArgsOptions(opts: Record<string, OptionSpec>) {
  return Object.fromEntries(
    Object.entries(opts).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

function suggest(name: string): string {
  const best = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])])
    .map((n) => [n, levenshtein(name, n)] as const)
    .sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= 2 ? `; did you mean '${best[0]}'?` : '';
}

function fail(io: Io, command: string | undefined, e: CliError, json: boolean, paint: (s: string) => string): number {
  io.stderr.write(`${paint(`xenops${command ? ` ${command}` : ''}`)}: ${e.message}\n`);
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ error: { message: e.message, exit_code: e.code, ...(e.errorValue !== undefined ? { server_error: e.errorValue } : {}) } }, null, 2)}\n`,
    );
  }
  return e.code;
}

/** Runs one invocation; resolves with the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const idx = commandIndex(argv);
  const wantsJson = argv.includes('--json');
  const bold = (s: string) => s;
  if (idx < 0) {
    let values: Values;
    try {
      values = parseArgs({ args: [...argv], options: toParseArgsOptions(GLOBAL_OPTIONS), strict: true, allowPositionals: false }).values as Values;
    } catch (e) {
      return fail(io, undefined, new CliError(`${(e as Error).message}; try 'xenops --help'`, ExitCode.USAGE), wantsJson, bold);
    }
    if (values.version) {
      io.stdout.write(values.json ? `${JSON.stringify({ version: VERSION })}\n` : `xenops ${VERSION}\n`);
      return 0;
    }
    if (values.help) {
      io.stdout.write(globalHelp(VERSION));
      return 0;
    }
    io.stderr.write(globalHelp(VERSION));
    return ExitCode.USAGE;
  }
  const name = argv[idx]!;
  if (name === 'help') {
    const topic = argv[idx + 1];
    const c = topic ? findCommand(topic) : undefined;
    if (topic && !c) return fail(io, undefined, new CliError(`unknown command '${topic}'${suggest(topic)}`, ExitCode.USAGE), false, bold);
    io.stdout.write(c ? commandHelp(c) : globalHelp(VERSION));
    return 0;
  }
  const command: Command | undefined = findCommand(name);
  if (!command) return fail(io, undefined, new CliError(`unknown command '${name}'${suggest(name)}; 'xenops --help' lists the commands`, ExitCode.USAGE), wantsJson, bold);
  const rest = [...argv.slice(0, idx), ...argv.slice(idx + 1)];
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: rest,
      options: toParseArgsOptions({ ...GLOBAL_OPTIONS, ...(command.options ?? {}) }),
      strict: true,
      allowPositionals: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    return fail(io, command.name, new CliError(`${msg}; try 'xenops ${command.name} --help'`, ExitCode.USAGE), wantsJson, bold);
  }
  if (values.help) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  const json = values.json === true;
  if (positionals.length < command.args.min || positionals.length > command.args.max) {
    const usage = Array.isArray(command.usage) ? command.usage.join(' | ') : command.usage;
    const what = positionals.length < command.args.min ? 'missing argument' : `unexpected argument '${positionals[command.args.max]}'`;
    return fail(io, command.name, new CliError(`${what}; usage: xenops ${usage}`, ExitCode.USAGE), json, bold);
  }
  const ctx = new Context(
    io,
    command.name,
    {
      url: values.url as string | undefined,
      socket: values.socket as string | undefined,
      nats: values.nats as string | undefined,
      natsSubject: values['nats-subject'] as string | undefined,
      natsSecurity: {
        ...(values['nats-creds'] ? { credsFile: values['nats-creds'] as string } : {}),
        ...(values['nats-nkey'] ? { nkeyFile: values['nats-nkey'] as string } : {}),
        ...(values['nats-tls-ca'] ? { tlsCaFile: values['nats-tls-ca'] as string } : {}),
        ...(values['nats-tls-cert'] ? { tlsCertFile: values['nats-tls-cert'] as string } : {}),
        ...(values['nats-tls-key'] ? { tlsKeyFile: values['nats-tls-key'] as string } : {}),
      },
      tokenFile: values['token-file'] as string | undefined,
    },
    json,
    values['no-wait'] === true,
    values['no-color'] === true,
  );
  const onSigint = () => {
    if (ctx.interrupt) ctx.interrupt();
    else {
      io.stderr.write('\n');
      process.exit(ExitCode.INTERRUPTED);
    }
  };
  process.on('SIGINT', onSigint);
  const red = (s: string) => ctx.paintErr('red', s);
  // `xenops disk eject: …` rather than `xenops disk: …` for commands with subcommands.
  const subs = command.complete?.[0];
  const where = Array.isArray(subs) && command.name !== 'completion' && subs.includes(positionals[0] ?? '') ? `${command.name} ${positionals[0]}` : command.name;
  try {
    await command.run(ctx, positionals, values);
    return 0;
  } catch (e) {
    if (e instanceof CliError) return fail(io, where, e, json, red);
    if (e instanceof RpcFailure) return fail(io, where, explain(e.error, { op: where }), json, red);
    const err = e as Error;
    return fail(io, where, new CliError(`unexpected error: ${err.stack ?? String(err)}`, ExitCode.GENERIC), json, red);
  } finally {
    process.off('SIGINT', onSigint);
    await ctx.close().catch(() => undefined);
  }
}
