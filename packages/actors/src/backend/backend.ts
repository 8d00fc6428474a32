import type { EventBody, VmAggregate } from '@xenops/core';
import type { Atom } from '../operations/atom.js';

/** What a backend needs to perform one atom. */
export interface AtomContext {
  /** The VM as the log knows it right before the atom. */
  readonly vm: VmAggregate;
  /** Aborted when the task is cancelled; waits end at once. */
  readonly signal: AbortSignal;
  /** Called when a wait begins: a cancellation point (§7.1). Throws when the task is cancelled. */
  readonly cancelPoint: () => void;
  /** The point of no return (§7.1): from now on the task ignores cancellation. */
  readonly markNonCancellable: () => void;
}

/** What an atom did: the facts to record, and for the last atom of some operations a result. */
export interface AtomOutcome {
  readonly events: EventBody[];
  /** The task's result (xenopsd-encoded wire value), e.g. run_script's `{rc, stdout, stderr}`. */
  readonly result?: unknown;
}

/**
 * A hypervisor backend. It performs atoms and reports what happened as events (facts); it never
 * writes the log itself. The agent appends the facts and folds them into the VM's state.
 */
export interface Backend {
  readonly name: string;
  /**
   * True for a backend whose atoms act on the world (QEMU, Xen): each atom's facts are written
   * before the next atom runs, so a crash never leaves an effect unrecorded. False for the
   * simulator, whose atoms are nothing but facts: a task's steps may share one message, and a
   * crash before it is written simply means the steps never happened.
   */
  readonly journalsEachAtom: boolean;
  perform(atom: Atom, ctx: AtomContext): Promise<AtomOutcome>;
}
