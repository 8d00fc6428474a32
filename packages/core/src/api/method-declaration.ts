/**
 * How an RPC method of the contract (API.md §5) is declared: once, as data, with the IDL types of
 * its arguments and result. The gateway's dispatch decodes and encodes with it, and the typed
 * client builds its calls from it, so the two cannot drift apart.
 */
import type { Infer, Type } from '../idl/descriptor.js';

/** The two dialects of the wire (API.md §1.1). */
export type ApiDialect = 'xenopsd' | 'seed';

/**
 * When the caller gets its answer (API.md §5 legend): `sync` (S) answers when done; `task` (T)
 * answers a task id at once and runs on the VM's queue; `queued` (S/q) is queued like a task and
 * awaited before the answer.
 */
export type MethodKind = 'sync' | 'task' | 'queued';

export interface ArgDeclaration<K extends string = string, T = unknown> {
  /** As §5 spells it; matched ignoring case in the named form. */
  readonly key: K;
  readonly type: Type<T>;
  /** `as_of` exists only in the named form (§9.6): never read positionally. */
  readonly namedOnly?: boolean;
}

// biome-ignore lint: `any` lets declarations of every argument type be assignable here.
export type AnyArgDeclaration = ArgDeclaration<string, any>;

export interface MethodDeclaration<N extends string = string, A extends readonly AnyArgDeclaration[] = readonly AnyArgDeclaration[], R = unknown> {
  /** As §5 spells it, e.g. `VM.start` or `Vm.start`: the payload of its `Unimplemented`. */
  readonly name: N;
  readonly dialect: ApiDialect;
  /** In the order of §5's table: the positional form's order. */
  readonly args: A;
  /** The result's type (`unit` for methods that answer nothing; a task id is a `string`). */
  readonly result: Type<R>;
  readonly kind: MethodKind;
}

// biome-ignore lint: `any` lets declarations of every method be assignable here.
export type AnyMethodDeclaration = MethodDeclaration<string, readonly AnyArgDeclaration[], any>;

/** The decoded arguments of a method, by key, as the gateway's handlers receive them. */
export type ArgsOf<M extends AnyMethodDeclaration> = { [E in M['args'][number] as E['key']]: Infer<E['type']> };

/** Whether an argument may be left out by a caller (§2.5): an option (None) or a unit. */
type Omittable<E extends AnyArgDeclaration> = undefined extends Infer<E['type']> ? true : null extends Infer<E['type']> ? true : false;

/** The arguments of a method as a caller gives them: options and units may be left out. */
export type CallArgsOf<M extends AnyMethodDeclaration> = {
  [E in M['args'][number] as Omittable<E> extends true ? never : E['key']]: Infer<E['type']>;
} & { [E in M['args'][number] as Omittable<E> extends true ? E['key'] : never]?: Infer<E['type']> };

/** The decoded result of a method. */
export type ResultOf<M extends AnyMethodDeclaration> = Infer<M['result']>;

/** A table of methods by name. */
export type MethodTable<L extends readonly AnyMethodDeclaration[]> = { readonly [M in L[number] as M['name']]: M };

export function arg<const K extends string, T>(key: K, type: Type<T>, opts: { readonly namedOnly?: boolean } = {}): ArgDeclaration<K, T> {
  return { key, type, ...(opts.namedOnly ? { namedOnly: true } : {}) };
}

/** A declaration builder for one dialect. */
export function declareIn(dialect: ApiDialect) {
  return <const N extends string, const A extends readonly AnyArgDeclaration[], R>(
    name: N,
    args: A,
    result: Type<R>,
    kind: MethodKind = 'sync',
  ): MethodDeclaration<N, A, R> => ({ name, dialect, args, result, kind });
}

/** Indexes a list of declarations by name (names are unique within a dialect). */
export function tableOf<const L extends readonly AnyMethodDeclaration[]>(methods: L): MethodTable<L> {
  const table: Record<string, AnyMethodDeclaration> = {};
  for (const m of methods) {
    if (m.name in table) throw new Error(`method ${m.name} is declared twice`);
    table[m.name] = m;
  }
  return table as MethodTable<L>;
}

/** The NATS subject every gateway answers JSON-RPC on (API.md §2.7; xenopsd `--queue` changes it). */
export const CLASSIC_RPC_SUBJECT = 'org.xen.xapi.xenops.classic';
