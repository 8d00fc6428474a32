/** Who, when and why: carried by every log event (API.md §9.5). */
export interface Audit {
  /** The caller's debug string, whole (`internal:<reason>` for engine-initiated work). */
  readonly dbg: string;
  /** Epoch milliseconds. */
  readonly timeMs: number;
  /** Id of the host that appended the event. */
  readonly host: string;
  /** The writer: `gateway`, `vm/<id>`, `task/<id>`, `host/<id>`. */
  readonly actor: string;
}
