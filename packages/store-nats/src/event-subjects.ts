/**
 * Subjects of the event stream `<prefix>_EVENTS`, in the two layouts a stream may use.
 *
 * - Layout 1 (streams created before layout 2 existed): `<prefix>.ev.<escaped key>`, the whole
 *   stream key one token (`vm/<id>` is `vm%2F<id>`). NATS permissions match whole tokens, so they
 *   cannot tell a VM's stream from any other.
 * - Layout 2: a key `<kind>/<rest>` is `<prefix>.ev.<escaped kind>.<escaped rest>` (`vm/<id>` is
 *   `<prefix>.ev.vm.<id>`), so a user may be allowed `<prefix>.ev.task.>` and denied
 *   `<prefix>.ev.vm.>`. A key without `/` stays one token, as in layout 1.
 *
 * A stream keeps the layout it was created with (a message's subject also decides which
 * per-subject sequence its optimistic concurrency checks against, so one stream must never mix
 * two spellings of a key): the layout is recorded in the stream's description when it is created
 * and read back at open; a stream without the marker is layout 1. Snapshots and restores of the
 * stream keep its configuration, so they keep its layout.
 */
import { escapeSubjectToken, StoreUnavailableError, unescapeSubjectToken } from '@xenops/core';

export type EventSubjectLayout = 1 | 2;

/** The layout of every stream this release creates. */
export const CURRENT_EVENT_SUBJECT_LAYOUT: EventSubjectLayout = 2;

const MARKER = /\bsubject layout (\d+)\b/;

/** The description a new event stream is created with; {@link layoutOfStream} reads it back. */
export function eventStreamDescription(prefix: string, layout: EventSubjectLayout = CURRENT_EVENT_SUBJECT_LAYOUT): string {
  const shape = layout === 1 ? `${prefix}.ev.<key>` : `${prefix}.ev.<kind>.<id>`;
  return `xenops event log, subject layout ${layout} (${shape})`;
}

/** The layout of an existing stream, from its description (no marker: layout 1). */
export function layoutOfStream(stream: string, description: string | undefined): EventSubjectLayout {
  const m = MARKER.exec(description ?? '');
  if (!m) return 1;
  const n = Number(m[1]);
  if (n === 1 || n === 2) return n;
  throw new StoreUnavailableError(
    `the stream ${stream} uses event subject layout ${n}, which this release does not know (it knows 1 and 2): upgrade xenopsd`,
  );
}

/** `<prefix>.ev` followed by the stream key's token(s). */
export function eventSubjectOf(prefix: string, streamKey: string, layout: EventSubjectLayout): string {
  const slash = layout === 2 ? streamKey.indexOf('/') : -1;
  if (slash < 0) return `${prefix}.ev.${escapeSubjectToken(streamKey)}`;
  return `${prefix}.ev.${escapeSubjectToken(streamKey.slice(0, slash))}.${escapeSubjectToken(streamKey.slice(slash + 1))}`;
}

/** The wildcard subject of every stream of one kind (layout 2 only): what permissions name. */
export function eventKindSubjects(prefix: string, kind: string): string {
  return `${prefix}.ev.${escapeSubjectToken(kind)}.>`;
}

/**
 * Inverse of {@link eventSubjectOf} for a stream of `layout`: the one spelling that layout gives
 * a key, nothing else (a layout-2 stream holding `vm%2F<id>` as one token would otherwise let a
 * writer allowed neither `<prefix>.ev.vm.>` nor that subject alias a VM's stream).
 */
export function streamKeyOfSubject(prefix: string, subject: string, layout: EventSubjectLayout): string {
  const base = prefix.length + 4; // `<prefix>.ev.`
  if (!subject.startsWith('.ev.', prefix.length) || !subject.startsWith(prefix)) {
    throw new Error(`subject ${JSON.stringify(subject)} is not an event subject of prefix ${prefix}`);
  }
  const dot = subject.indexOf('.', base);
  if (dot < 0) {
    const key = unescapeSubjectToken(subject.slice(base));
    if (layout === 2 && key.includes('/')) {
      throw new Error(`subject ${JSON.stringify(subject)} spells a key with "/" in one token, which a layout-2 stream never holds`);
    }
    return key;
  }
  if (layout === 1 || subject.indexOf('.', dot + 1) >= 0) {
    throw new Error(`subject ${JSON.stringify(subject)} has too many tokens for an event subject of layout ${layout}`);
  }
  return `${unescapeSubjectToken(subject.slice(base, dot))}/${unescapeSubjectToken(subject.slice(dot + 1))}`;
}
