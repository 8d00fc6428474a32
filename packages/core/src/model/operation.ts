/**
 * Operations: what a task does to a VM. A task is created for one operation, queued on its VM
 * (API.md §7.2) and expanded into atoms by the actors package (§7.3).
 */
export type Operation = OperationBody & {
  /** Destroy the task record when it ends (S/q calls such as VM.remove, internal checks). */
  readonly autoDestroy?: boolean;
};

export type OperationBody =
  /** `unpause`: the seed dialect's start also unpauses (the VM ends Running). */
  | { readonly kind: 'VM.start'; readonly paused: boolean; readonly unpause: boolean }
  /** `delay` absent: hard power-off. `fallbackToHard`: seed semantics of §7.4. */
  | { readonly kind: 'VM.shutdown'; readonly delay?: number; readonly fallbackToHard: boolean }
  | { readonly kind: 'VM.pause' }
  | { readonly kind: 'VM.unpause' }
  | { readonly kind: 'VM.remove' }
  /** Internal: put the VM back into a consistent state after a failure or a restart (§7.3). */
  | { readonly kind: 'VM.check_state'; readonly reason: string };

export type OperationKind = OperationBody['kind'];

export class OperationDecodeError extends Error {
  override readonly name = 'OperationDecodeError';
}

const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Validates an operation that crossed a process boundary (log or bus). */
export function decodeOperation(v: unknown): Operation {
  if (typeof v !== 'object' || v === null) throw new OperationDecodeError('operation is not an object');
  const o = v as Record<string, unknown>;
  const autoDestroy = o.autoDestroy === undefined ? {} : isBool(o.autoDestroy) ? { autoDestroy: o.autoDestroy } : bad('autoDestroy');
  switch (o.kind) {
    case 'VM.start':
      if (!isBool(o.paused) || !isBool(o.unpause)) bad('VM.start flags');
      return { kind: 'VM.start', paused: o.paused as boolean, unpause: o.unpause as boolean, ...autoDestroy };
    case 'VM.shutdown':
      if (o.delay !== undefined && !isNum(o.delay)) bad('VM.shutdown delay');
      if (!isBool(o.fallbackToHard)) bad('VM.shutdown fallbackToHard');
      return {
        kind: 'VM.shutdown',
        ...(o.delay === undefined ? {} : { delay: o.delay as number }),
        fallbackToHard: o.fallbackToHard as boolean,
        ...autoDestroy,
      };
    case 'VM.pause':
    case 'VM.unpause':
    case 'VM.remove':
      return { kind: o.kind, ...autoDestroy };
    case 'VM.check_state':
      if (typeof o.reason !== 'string') bad('VM.check_state reason');
      return { kind: 'VM.check_state', reason: o.reason as string, ...autoDestroy };
    default:
      throw new OperationDecodeError(`unknown operation ${JSON.stringify(o.kind)}`);
  }
}

function bad(what: string): never {
  throw new OperationDecodeError(`malformed operation: ${what}`);
}
