/** `xenops completion bash|zsh`: a shell completion script, generated from the command table. */
import { usageError } from '../errors.js';
import type { Command } from '../command.js';
import { GLOBAL_OPTIONS } from '../global-options.js';
// A cycle (index.ts lists this command), used only when the command runs.
import { COMMANDS } from './index.js';


function optionsOf(c: Command): string[] {
  return [...Object.keys(c.options ?? {}), ...Object.keys(GLOBAL_OPTIONS)].map((o) => `--${o}`);
}

export function bashScript(commands: readonly Command[]): string {
  const names = commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]).join(' ');
  const cases = commands
    .map((c) => {
      const subs = c.complete?.find((x) => Array.isArray(x)) as string[] | undefined;
      const vm = c.complete?.includes('vm') ? 'vm' : c.complete?.includes('file') ? 'file' : c.complete?.includes('task') ? 'task' : 'none';
      return `    ${[c.name, ...(c.aliases ?? [])].join('|')}) opts="${optionsOf(c).join(' ')}"; subs="${subs?.join(' ') ?? ''}"; what=${vm} ;;`;
    })
    .join('\n');
  return `# bash completion for xenops; load with:  source <(xenops completion bash)
_xenops() {
  local cur prev cmd i opts subs what
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      --url|--socket|--nats|--nats-subject|--token-file) ((i++)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  case "$prev" in
    --socket|--token-file|--image|-o|--output) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  if [[ -z "$cmd" ]]; then
    COMPREPLY=( $(compgen -W "${names} ${Object.keys(GLOBAL_OPTIONS).map((o) => `--${o}`).join(' ')}" -- "$cur") )
    return
  fi
  case "$cmd" in
${cases}
    *) opts=""; subs=""; what=none ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$opts" -- "$cur") ); return; fi
  if [[ -n "$subs" && "$prev" == "$cmd" ]]; then COMPREPLY=( $(compgen -W "$subs" -- "$cur") ); return; fi
  case "$what" in
    vm) COMPREPLY=( $(compgen -W "$(xenops list --json 2>/dev/null | sed -n 's/^ *"name": "\\(.*\\)",$/\\1/p')" -- "$cur") ) ;;
    task) COMPREPLY=( $(compgen -W "$(xenops tasks --json 2>/dev/null | sed -n 's/^ *"id": "\\(.*\\)",$/\\1/p')" -- "$cur") ) ;;
    file) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
  esac
}
complete -F _xenops xenops
`;
}

export function zshScript(commands: readonly Command[]): string {
  const described = commands.map((c) => `    '${c.name}:${c.summary.replace(/'/g, "'\\''").replace(/:/g, '\\:')}'`).join('\n');
  const cases = commands
    .map((c) => {
      const subs = c.complete?.find((x) => Array.isArray(x)) as string[] | undefined;
      const what = c.complete?.includes('vm') ? '_xenops_vms' : c.complete?.includes('file') ? '_files' : c.complete?.includes('task') ? '_xenops_tasks' : '';
      const opts = optionsOf(c).map((o) => `'${o}'`).join(' ');
      const body = subs ? `if (( CURRENT == 3 )); then compadd ${subs.join(' ')}; else ${what || ':'}; fi` : what || ':';
      return `    ${[c.name, ...(c.aliases ?? [])].join('|')}) if [[ $PREFIX == -* ]]; then compadd -- ${opts}; else ${body}; fi ;;`;
    })
    .join('\n');
  return `#compdef xenops
# zsh completion for xenops; load with:  source <(xenops completion zsh)
_xenops_vms() { compadd -- \${(f)"$(xenops list --json 2>/dev/null | sed -n 's/^ *"name": "\\(.*\\)",$/\\1/p')"}; }
_xenops_tasks() { compadd -- \${(f)"$(xenops tasks --json 2>/dev/null | sed -n 's/^ *"id": "\\(.*\\)",$/\\1/p')"}; }
_xenops() {
  local -a cmds
  cmds=(
${described}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    return
  fi
  case \${words[2]} in
${cases}
  esac
}
compdef _xenops xenops 2>/dev/null || true
`;
}

export const completion: Command = {
  name: 'completion',
  summary: 'print a shell completion script (bash or zsh)',
  usage: 'completion bash|zsh',
  examples: ['source <(xenops completion bash)', 'xenops completion zsh > "${fpath[1]}/_xenops"'],
  args: { min: 1, max: 1 },
  complete: [['bash', 'zsh']],
  async run(ctx, [shell]) {
    const commands = COMMANDS;
    if (shell === 'bash') ctx.out(bashScript(commands));
    else if (shell === 'zsh') ctx.out(zshScript(commands));
    else throw usageError(`completion scripts exist for bash and zsh, not "${shell}"`);
  },
};
