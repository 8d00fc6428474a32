/** The shape of a `xenops` command: its help text, its options and what it does. */
import type { Context } from './context.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder in help, e.g. `S`, `PATH`. */
  value?: string;
  description: string;
  multiple?: boolean;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  name: string;
  aliases?: string[];
  /** One line for the command list. */
  summary: string;
  /** Synopsis after `xenops `, e.g. `start VM [--paused]`. */
  usage: string | string[];
  /** More text for `--help` (optional). */
  description?: string;
  options?: Record<string, OptionSpec>;
  examples: string[];
  /** Positional argument count. */
  args: { min: number; max: number };
  /** Completion: what the positionals are (for the shell scripts). */
  complete?: Array<'vm' | 'file' | 'task' | string[]>;
  /** `--no-wait` means something for this command (it starts a task). */
  tasks?: boolean;
  run(ctx: Context, positionals: string[], values: Values): Promise<void>;
}
