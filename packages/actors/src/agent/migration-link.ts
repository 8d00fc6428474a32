import { decodeReply, encodeCommand, XenopsError, type CommandBus, type CommandReply } from '@xenops/core';
import type { MigrationLink } from '../backend/backend.js';
import { faultPoint } from './fault-points.js';

/** The largest piece of a migration's state in one bus message (NATS' default max_payload is 1 MiB). */
export const DEFAULT_MIGRATION_CHUNK_BYTES = 256 * 1024;
/** How long each chunk may wait for the destination's acknowledgement. */
const CHUNK_TIMEOUT_MS = 10_000;
/** How long the destination may take to get ready (QEMU: start a process and create its devices). */
const PREPARE_TIMEOUT_MS = 120_000;
/** A received state nobody takes (its migration failed at the source) is dropped after this long. */
const RECEIVED_STATE_TTL_MS = 5 * 60_000;

interface Incoming {
  readonly vmId: string;
  readonly total: number;
  readonly parts: Buffer[];
  received: number;
  readonly expiry: NodeJS.Timeout;
}

/**
 * A migration's state between two agents over the command bus (§7.8): the source sends it in
 * acknowledged chunks, in order, to the destination's host address; the destination keeps it in
 * memory until its backend takes it. Nothing of it is logged: a destination that restarts before
 * taking it has lost it, and its migration fails there (the state check of §7.3 halts the VM).
 */
export class AgentMigrationLink implements MigrationLink {
  private readonly incoming = new Map<string, Incoming>();

  constructor(
    private readonly bus: CommandBus,
    private readonly opts: {
      readonly chunkBytes?: number;
      /** Called when a state has arrived whole. */
      readonly onComplete?: (vmId: string, transferId: string) => void;
    } = {},
  ) {}

  async prepare(destination: string, transfer: { readonly vmId: string; readonly transferId: string }, payload: unknown, signal: AbortSignal): Promise<unknown> {
    signal.throwIfAborted();
    const request = encodeCommand({
      dbg: `internal:migration ${transfer.transferId}`,
      command: { type: 'MigrationPrepare', vmId: transfer.vmId, transferId: transfer.transferId, payload: JSON.stringify(payload ?? null) },
    });
    const reply: CommandReply = decodeReply(await this.bus.request(destination, request, { timeoutMs: PREPARE_TIMEOUT_MS }));
    if (!reply.ok) throw new XenopsError(reply.error);
    return reply.value;
  }

  async send(
    destination: string,
    transfer: { readonly vmId: string; readonly transferId: string },
    state: Uint8Array,
    opts: { readonly signal: AbortSignal; readonly onProgress?: (fraction: number) => void },
  ): Promise<void> {
    const chunk = this.opts.chunkBytes ?? DEFAULT_MIGRATION_CHUNK_BYTES;
    const total = state.byteLength;
    for (let offset = 0; ; offset += chunk) {
      opts.signal.throwIfAborted();
      const data = Buffer.from(state.subarray(offset, Math.min(total, offset + chunk))).toString('base64');
      const request = encodeCommand({
        dbg: `internal:migration ${transfer.transferId}`,
        command: { type: 'MigrationChunk', vmId: transfer.vmId, transferId: transfer.transferId, offset, total, data },
      });
      const reply: CommandReply = decodeReply(await this.bus.request(destination, request, { timeoutMs: CHUNK_TIMEOUT_MS }));
      if (!reply.ok) throw new XenopsError(reply.error);
      const sent = Math.min(total, offset + chunk);
      if (sent >= total) {
        faultPoint('migration-state-sent');
        return;
      }
      opts.onProgress?.(sent / total);
    }
  }

  /**
   * A chunk arrived: appended when it is the next one of its transfer (a repeated first chunk
   * starts the transfer again); `true` once the state is whole.
   */
  receive(chunk: { readonly vmId: string; readonly transferId: string; readonly offset: number; readonly total: number; readonly data: string }): boolean {
    let entry = this.incoming.get(chunk.transferId);
    if (chunk.offset === 0) {
      if (entry) this.drop(chunk.transferId);
      const expiry = setTimeout(() => this.drop(chunk.transferId), RECEIVED_STATE_TTL_MS);
      expiry.unref();
      entry = { vmId: chunk.vmId, total: chunk.total, parts: [], received: 0, expiry };
      this.incoming.set(chunk.transferId, entry);
    }
    if (!entry || entry.vmId !== chunk.vmId || entry.total !== chunk.total || entry.received !== chunk.offset) {
      throw new XenopsError(['Internal_error', `migration ${chunk.transferId}: chunk at ${chunk.offset} of ${chunk.total} is out of order`]);
    }
    const bytes = Buffer.from(chunk.data, 'base64');
    entry.parts.push(bytes);
    entry.received += bytes.byteLength;
    if (entry.received > entry.total) {
      this.drop(chunk.transferId);
      throw new XenopsError(['Internal_error', `migration ${chunk.transferId}: more bytes than announced`]);
    }
    const complete = entry.received === entry.total;
    if (complete) this.opts.onComplete?.(chunk.vmId, chunk.transferId);
    return complete;
  }

  /**
   * The whole state received under `transferId`. It stays until it expires or the transfer is
   * dropped: a destination whose first restore could not be written (the store went away) takes
   * it again when it retries.
   */
  take(transferId: string): Uint8Array | undefined {
    faultPoint('migration-receiving');
    const entry = this.incoming.get(transferId);
    if (!entry || entry.received !== entry.total) return undefined;
    return Buffer.concat(entry.parts);
  }

  /** Whether a whole state waits under `transferId`. */
  holds(transferId: string): boolean {
    const entry = this.incoming.get(transferId);
    return entry !== undefined && entry.received === entry.total;
  }

  drop(transferId: string): void {
    const entry = this.incoming.get(transferId);
    if (!entry) return;
    clearTimeout(entry.expiry);
    this.incoming.delete(transferId);
  }

  close(): void {
    for (const id of [...this.incoming.keys()]) this.drop(id);
  }
}
