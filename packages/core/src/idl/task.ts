/**
 * Tasks (API.md §4.9, seed shape §4.12). The internal `TaskView` is not a wire record: the
 * encoder adds the constant parts (`subtasks`, `backtrace`) and shapes the rest per dialect.
 */
import type { ErrorValue } from '../errors.js';
import {
  any,
  bool,
  dict,
  float,
  int,
  joinPath,
  lookupKey,
  missingKey,
  option,
  record,
  string,
  structEntries,
  typeError,
  variant,
  type Dialect,
  type Infer,
  type Type,
} from './descriptor.js';
import { dictGet } from './dict.js';
import { ErrorT } from './error-value.js';
import { RpcDouble, parseJsonWire, struct, wireToJson, type WireOut } from './wire.js';

export const TaskCompletionT = record('Task.completion', {
  duration: float,
  /** Already a wire value (e.g. `{rc, stdout, stderr}` of run_script, or a VM id); kept verbatim. */
  result: option(any),
});

/** `["Pending", progress] | ["Completed", {duration, result?}] | ["Failed", error]`. */
export const TaskStateT = variant('Task.state', { Pending: float, Completed: TaskCompletionT, Failed: ErrorT });
export type TaskState = Infer<typeof TaskStateT>;

export interface TaskView {
  /** Decimal string: the seq of the task's creation event. */
  readonly id: string;
  /** The whole debug string (the xenopsd encoding shows it up to its first newline). */
  readonly dbg: string;
  /** Creation time, epoch seconds. */
  readonly ctime: number;
  readonly state: TaskState;
  readonly cancelPointsSeen: number;
  readonly cancellable: boolean;
}

/** The first line of a debug string, which is what `Task.t` shows as `dbg` (§4.9). */
export function firstLine(dbg: string): string {
  const i = dbg.indexOf('\n');
  return i < 0 ? dbg : dbg.slice(0, i);
}

function encodeSeedResult(state: TaskState): WireOut {
  switch (state[0]) {
    case 'Pending':
      return ['Pending', new RpcDouble(state[1])];
    case 'Completed':
      return ['Completed', new RpcDouble(state[1].duration)];
    case 'Failed':
      // The seed's failure payload is the error's JSON text, compact whatever the request's format.
      return ['Failed', wireToJson(ErrorT.encode(state[1], 'seed'))];
  }
}

/** Reads a seed `result` back (only for completeness: no seed call takes a Task.t). */
function decodeSeedResult(w: unknown, path: string): TaskState {
  const SeedResultT = variant('Task.result', { Pending: float, Completed: float, Failed: string });
  const r = SeedResultT.decode(w, path);
  if (r[0] === 'Pending') return r;
  if (r[0] === 'Completed') return ['Completed', { duration: r[1] }];
  let error: ErrorValue;
  try {
    error = ErrorT.decode(parseJsonWire(r[1]), joinPath(path, 'Failed'));
  } catch {
    error = ['Internal_error', r[1]];
  }
  return ['Failed', error];
}

const CancelPointsT = dict(string);

export const TaskT: Type<TaskView> = {
  kind: 'record',
  name: 'Task.t',
  decode(w, path) {
    if (!structEntries(w)) throw typeError(path, 'Task.t', w);
    const get = (key: string) => lookupKey(w, key);
    const rawId = get('id');
    if (rawId === undefined) throw missingKey('id', 'Task.t');
    const rawState = get('state');
    let state: TaskState;
    if (rawState !== undefined) state = TaskStateT.decode(rawState, joinPath(path, 'state'));
    else if (get('result') !== undefined) state = decodeSeedResult(get('result'), joinPath(path, 'result'));
    else throw missingKey('state', 'Task.t');
    const rawDebugInfo = get('debug_info');
    const debugInfo = rawDebugInfo === undefined ? [] : CancelPointsT.decode(rawDebugInfo, joinPath(path, 'debug_info'));
    const points = dictGet(debugInfo, 'cancel_points_seen');
    const rawDbg = get('dbg');
    const rawCtime = get('ctime');
    const rawCancellable = get('cancellable');
    return {
      id: string.decode(rawId, joinPath(path, 'id')),
      dbg: rawDbg === undefined ? '' : string.decode(rawDbg, joinPath(path, 'dbg')),
      ctime: rawCtime === undefined ? 0 : float.decode(rawCtime, joinPath(path, 'ctime')),
      state,
      cancelPointsSeen: points === undefined ? 0 : int.decode(points, joinPath(path, 'debug_info.cancel_points_seen')),
      cancellable: rawCancellable === undefined ? true : bool.decode(rawCancellable, joinPath(path, 'cancellable')),
    };
  },
  encode(v: TaskView, d: Dialect): WireOut {
    if (d === 'seed') {
      return struct([
        ['id', v.id],
        ['result', encodeSeedResult(v.state)],
        ['subtasks', struct([])],
      ]);
    }
    return struct([
      ['id', v.id],
      // The internal encoding keeps the whole debug string (it is what the log stores).
      ['dbg', d === 'internal' ? v.dbg : firstLine(v.dbg)],
      ['ctime', new RpcDouble(v.ctime)],
      ['state', TaskStateT.encode(v.state, d)],
      ['subtasks', struct([])],
      ['debug_info', struct([['cancel_points_seen', String(v.cancelPointsSeen)]])],
      ['backtrace', '()'],
      ['cancellable', v.cancellable],
    ]);
  },
};
