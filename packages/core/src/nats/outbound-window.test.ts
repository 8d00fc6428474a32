import { describe, expect, it } from 'vitest';
import { OutboundWindow } from './outbound-window.js';

describe('OutboundWindow', () => {
  it('holds the sends of a turn and issues them together, in order, in a later turn', async () => {
    const window = new OutboundWindow(() => {});
    const sent: string[] = [];
    window.defer(() => sent.push('a'));
    const b = window.run(async () => {
      sent.push('b');
      return 'B';
    });
    window.defer(() => sent.push('c'));
    expect(sent).toEqual([]);
    await Promise.resolve(); // microtasks of this turn: still held
    expect(sent).toEqual([]);
    await expect(b).resolves.toBe('B');
    expect(sent).toEqual(['a', 'b', 'c']);
  });

  it('settles run() as the send does, including a send that throws before returning its promise', async () => {
    const window = new OutboundWindow(() => {});
    await expect(window.run(() => Promise.reject(new Error('no ack')))).rejects.toThrow('no ack');
    await expect(
      window.run(() => {
        throw new Error('closed');
      }),
    ).rejects.toThrow('closed');
  });

  it('a failing deferred send does not stop the others of its turn', async () => {
    const errors: string[] = [];
    const window = new OutboundWindow((line) => errors.push(line));
    const sent: string[] = [];
    window.defer(() => {
      throw new Error('connection closed');
    });
    await window.run(async () => sent.push('after'));
    expect(sent).toEqual(['after']);
    expect(errors).toEqual(['a deferred NATS send failed: connection closed']);
  });

  it('a send issued by a send of the flush is not lost: it goes out with the next turn', async () => {
    const window = new OutboundWindow(() => {});
    const sent: string[] = [];
    const later = new Promise<void>((resolve) => {
      window.defer(() => {
        sent.push('a');
        window.defer(() => {
          sent.push('c');
          resolve();
        });
      });
    });
    window.defer(() => sent.push('b'));
    await later;
    expect(sent).toEqual(['a', 'b', 'c']);
  });
});
