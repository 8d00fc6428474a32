/** Colour only when the stream is a terminal and `NO_COLOR` is unset (https://no-color.org). */
import { styleText } from 'node:util';

export type Style = Parameters<typeof styleText>[0];

export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !('NO_COLOR' in env && env.NO_COLOR !== '') && env.TERM !== 'dumb';
}

export type Paint = (style: Style, text: string) => string;

export const paintWith =
  (enabled: boolean): Paint =>
  (style, text) =>
    // The decision is ours (colourEnabled); styleText would otherwise re-check process.stdout and
    // FORCE_COLOR/NODE_DISABLE_COLORS and could disagree with the stream we actually write to.
    enabled && text !== '' ? styleText(style, text, { validateStream: false }) : text;

const POWER_STYLE: Record<string, Style> = {
  Running: 'green',
  Paused: 'yellow',
  Suspended: 'cyan',
  Halted: 'gray',
};

export function paintPower(paint: Paint, state: string): string {
  const s = POWER_STYLE[state];
  return s ? paint(s, state) : state;
}

const TASK_STYLE: Record<string, Style> = { Pending: 'yellow', Completed: 'green', Failed: 'red' };
export function paintTaskState(paint: Paint, state: string): string {
  const s = TASK_STYLE[state];
  return s ? paint(s, state) : state;
}

// biome-ignore lint: the escape character is the point
const ANSI = /\x1b\[[0-9;]*m/g;
export const stripAnsi = (s: string): string => s.replace(ANSI, '');
