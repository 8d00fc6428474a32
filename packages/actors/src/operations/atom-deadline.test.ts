import { describe, expect, it } from 'vitest';
import { AtomDeadline, AtomTimeoutError } from './atom-deadline.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AtomDeadline', () => {
  it('limits each atom on its own: atoms shorter than the limit pass even when together they are longer', async () => {
    const deadline = new AtomDeadline(80);
    try {
      for (let i = 0; i < 4; i++) await expect(deadline.run(() => sleep(40).then(() => i))).resolves.toBe(i);
      expect(deadline.signal.aborted).toBe(false);
    } finally {
      deadline.dispose();
    }
  });

  it('rejects an atom that runs past the limit, even one that ignores its signal, and aborts the signal', async () => {
    const deadline = new AtomDeadline(50);
    try {
      await expect(deadline.run(() => new Promise<never>(() => {}))).rejects.toBeInstanceOf(AtomTimeoutError);
      expect(deadline.signal.aborted).toBe(true);
      // Expired for good: a later atom of the same task is refused at once.
      await expect(deadline.run(async () => 1)).rejects.toBeInstanceOf(AtomTimeoutError);
    } finally {
      deadline.dispose();
    }
  });

  it('does not count the time between atoms', async () => {
    const deadline = new AtomDeadline(50);
    try {
      await deadline.run(async () => undefined);
      await sleep(120); // e.g. the task writing the log between two atoms
      expect(deadline.signal.aborted).toBe(false);
      await expect(deadline.run(async () => 'next')).resolves.toBe('next');
    } finally {
      deadline.dispose();
    }
  });

  it('passes an atom failure through unchanged', async () => {
    const deadline = new AtomDeadline(1000);
    try {
      await expect(deadline.run(() => Promise.reject(new Error('no such domain')))).rejects.toThrow('no such domain');
    } finally {
      deadline.dispose();
    }
  });
});
