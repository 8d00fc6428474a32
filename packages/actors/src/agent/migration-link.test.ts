/**
 * A migration's state between two agents (API.md §7.8): sent in acknowledged chunks in order,
 * whole or not at all, taken once; a destination that is not there, or refuses a chunk, fails the
 * send; a cancelled send stops.
 */
import { decodeCommand, encodeReply, InProcessCommandBus, toErrorValue } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import { AgentMigrationLink } from './migration-link.js';

function pair(chunkBytes: number) {
  const bus = new InProcessCommandBus();
  const completed: string[] = [];
  const source = new AgentMigrationLink(bus, { chunkBytes });
  const destination = new AgentMigrationLink(bus, { chunkBytes, onComplete: (_vm, id) => completed.push(id) });
  const serve = () =>
    bus.serve('h2', async (data) => {
      const { command } = decodeCommand(data);
      if (command.type !== 'MigrationChunk') throw new Error(command.type);
      try {
        destination.receive(command);
        return encodeReply({ ok: true, seq: 0, value: null });
      } catch (e) {
        return encodeReply({ ok: false, seq: 0, error: toErrorValue(e) });
      }
    });
  return { bus, source, destination, completed, serve };
}

describe('AgentMigrationLink', () => {
  it('sends a state in chunks with progress; the destination has it whole, again on a retry, until it is dropped', async () => {
    const { source, destination, completed, serve } = pair(4);
    await serve();
    const progress: number[] = [];
    const state = Buffer.from('0123456789');
    await source.send('h2', { vmId: 'v', transferId: '7' }, state, { signal: new AbortController().signal, onProgress: (f) => progress.push(f) });
    expect(progress).toEqual([0.4, 0.8]);
    expect(completed).toEqual(['7']);
    expect(destination.holds('7')).toBe(true);
    expect(Buffer.from(destination.take('7')!).toString()).toBe('0123456789');
    expect(Buffer.from(destination.take('7')!).toString()).toBe('0123456789');
    destination.drop('7');
    expect(destination.take('7')).toBeUndefined();
    expect(destination.holds('7')).toBe(false);
  });

  it('an empty state is one chunk; a chunk out of order, or more bytes than announced, is refused', async () => {
    const { source, destination, serve } = pair(4);
    await serve();
    await source.send('h2', { vmId: 'v', transferId: '1' }, new Uint8Array(0), { signal: new AbortController().signal });
    expect(destination.take('1')).toEqual(Buffer.alloc(0));
    expect(() => destination.receive({ vmId: 'v', transferId: '2', offset: 4, total: 8, data: 'AAAA' })).toThrow(/out of order/);
    expect(() => destination.receive({ vmId: 'v', transferId: '3', offset: 0, total: 2, data: Buffer.from('abc').toString('base64') })).toThrow(/more bytes/);
    expect(destination.holds('3')).toBe(false);
  });

  it('a destination with no agent fails the send; a cancelled send stops before its next chunk', async () => {
    const { source } = pair(4);
    await expect(source.send('h2', { vmId: 'v', transferId: '9' }, Buffer.from('abcdef'), { signal: new AbortController().signal })).rejects.toThrow();
    const { source: s2, serve, destination } = pair(2);
    await serve();
    const abort = new AbortController();
    const sending = s2.send('h2', { vmId: 'v', transferId: '5' }, Buffer.from('abcdef'), { signal: abort.signal, onProgress: () => abort.abort() });
    await expect(sending).rejects.toThrow();
    expect(destination.holds('5')).toBe(false);
  });
});
