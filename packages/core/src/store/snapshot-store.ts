/** Latest-only snapshots of folded state, keyed by any non-empty string (e.g. `vm/<id>`). */
export interface Snapshot {
  /** The log seq the snapshot includes (state after folding every message up to this seq). */
  readonly seq: number;
  readonly data: Uint8Array;
}

export interface SnapshotStore {
  get(key: string): Promise<Snapshot | undefined>;
  /** Stores the snapshot unless a newer one (higher seq) is already stored. */
  put(key: string, snapshot: Snapshot): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
