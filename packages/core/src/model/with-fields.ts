/**
 * `record` with `fields` set: a new record when any of them changes, `record` itself when each
 * already holds its value (`Object.is`), so that an event that changes nothing leaves the fold's
 * records as they were and the diffs of the change feed, which compare by reference, see nothing.
 * A field the record lacks counts as a change even to `undefined` (the key appears).
 */
export function withFields<T extends object>(record: T, fields: { readonly [K in keyof T]?: T[K] }): T {
  for (const key in fields) {
    if (!(key in record) || !Object.is(record[key as keyof T], fields[key as keyof T])) return { ...record, ...fields };
  }
  return record;
}
