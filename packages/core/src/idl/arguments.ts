/**
 * Method arguments (API.md §2.5): a named argument is decoded like a record field (options bare),
 * and an absent one takes the §2.5 default (unit, option, bool, dict) or fails
 * `Expecting named argument '<key>'`.
 */
import { Errors } from '../errors.js';
import { decodeField, defaultOf, lookupKey, type Type } from './descriptor.js';

/** Decodes one argument's value; `w` undefined means the argument was not given. */
export function decodeArgument<T>(t: Type<T>, w: unknown, key: string): T {
  if (w === undefined) {
    const d = defaultOf(t);
    if (!d) throw Errors.internal(`Expecting named argument '${key}'`);
    return d.value;
  }
  // A unit argument may also be `null` (§2.5), which decodeField accepts for unit anyway.
  return decodeField(t, w, key);
}

/** Decodes the argument `key` of a named-form params struct (keys matched ignoring case). */
export function decodeNamedArgument<T>(t: Type<T>, params: unknown, key: string): T {
  return decodeArgument(t, lookupKey(params, key), key);
}
