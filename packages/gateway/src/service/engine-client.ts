import {
  ANY_AGENT,
  BusPayloadTooLargeError,
  BusTimeoutError,
  decodeReply,
  encodeCommand,
  Errors,
  isQueueFull,
  NoResponderError,
  TRACEPARENT_HEADER,
  traceparentOfDbg,
  XenopsError,
  type Command,
  type CommandBus,
} from '@xenops/core';
import type { Projection } from '../read-model/projection.js';

/** No agent serves the host (nor, when any would do, any other host). */
export class NoAgentError extends XenopsError {
  constructor(readonly host: string) {
    super(['Internal_error', `no agent for host ${host}`]);
  }
}

/** Commands from the gateway to host agents, over the bus only (the gateway never imports actors). */
export class EngineClient {
  /** Operations the agents refused because the VM's queue was full (README "Limits"). */
  queueFullRefusals = 0;

  constructor(
    private readonly bus: CommandBus,
    private readonly projection: Projection,
    /** Deciding a command is quick (a decision and one append): a silent agent is a dead one. */
    private readonly timeoutMs = 10_000,
  ) {}

  /**
   * Sends a command to the agent of `host` and returns its value once the projection has folded
   * the write (read-your-writes). Agent-side refusals are thrown as XenopsError. `orAnyAgent`: a
   * command any agent may decide (for a free VM) goes to any agent when `host` has none.
   */
  async send(host: string, dbg: string, command: Command, opts: { readonly orAnyAgent?: boolean } = {}): Promise<unknown> {
    let raw: Uint8Array;
    const data = encodeCommand({ dbg, command });
    const traceparent = traceparentOfDbg(dbg);
    const options = { timeoutMs: this.timeoutMs, ...(traceparent ? { headers: { [TRACEPARENT_HEADER]: traceparent } } : {}) };
    try {
      try {
        raw = await this.bus.request(host, data, options);
      } catch (e) {
        if (!(e instanceof NoResponderError && opts.orAnyAgent)) throw e;
        raw = await this.bus.request(ANY_AGENT, data, options);
      }
    } catch (e) {
      if (e instanceof NoResponderError) throw new NoAgentError(host);
      // API.md §2.7: the NATS server's max_payload bounds a request as the 16 MiB limit does.
      if (e instanceof BusPayloadTooLargeError) {
        throw Errors.internal(`request body exceeds ${e.maxPayload} bytes (the NATS server's max_payload) as a command to the agent of host ${host}`);
      }
      if (e instanceof BusTimeoutError) throw Errors.internal(`agent of host ${host} did not answer within ${this.timeoutMs / 1000} s`);
      throw Errors.internal(`cannot reach the agent of host ${host}: ${(e as Error).message}`);
    }
    const reply = decodeReply(raw);
    await this.projection.waitFor(reply.seq);
    if (!reply.ok) {
      if (isQueueFull(reply.error)) this.queueFullRefusals++;
      throw new XenopsError(reply.error);
    }
    return reply.value;
  }
}
