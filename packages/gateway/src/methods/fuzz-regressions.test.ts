/**
 * Regressions the fuzz suite (test/fuzz) found in method handlers: each answered a hostile but
 * well-formed request with something other than API.md's errors.
 */
import { describe, expect, it } from 'vitest';
import { debugTriggerTarget, XenopsError, type Command } from '@xenops/core';
import type { CallContext } from './method.js';
import { debugHandlers } from './debug.js';
import { hostHandlers } from './host.js';
import { metadataHandlers } from './metadata.js';

/** A call context for handlers that must fail before they touch the gateway. */
const call: CallContext = { gateway: {} as CallContext['gateway'], dbg: 'fuzz', dialect: 'xenopsd', wireArgument: () => undefined };

async function errorValueOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XenopsError) return e.value;
    throw e;
  }
  throw new Error('the call succeeded');
}

describe('fuzz regressions', () => {
  it('DEBUG.trigger with a command named like an Object.prototype member is an unknown command (§8.3), not a guest action', async () => {
    const trigger = debugHandlers['DEBUG.trigger'];
    const sent: Array<[string, Command]> = [];
    // The engine's verdict on the command (what the agent answers), as the gateway's host's agent would give it.
    const engine = {
      send: async (host: string, _dbg: string, command: Command) => {
        sent.push([host, command]);
        const c = command as Extract<Command, { type: 'DebugTrigger' }>;
        const target = debugTriggerTarget(c.cmd, c.args);
        if (target instanceof XenopsError) throw target;
        return null;
      },
    };
    const routed = { ...call, gateway: { hostId: 'h', engine, projection: { vms: new Map() } } as unknown as CallContext['gateway'] };
    for (const cmd of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(await errorValueOf(trigger(routed, { cmd, args: ['vm'] })), cmd).toEqual(['Unimplemented', cmd]);
    }
    // Not routed as a trigger about VM `vm`: to this gateway's host, as any command it does not know.
    expect(sent.map(([host]) => host)).toEqual(['h', 'h', 'h', 'h']);
  });

  it('VM.import_metadata of text that is not JSON: the parser\'s quote of it stays one well-formed line', async () => {
    const importMetadata = metadataHandlers['VM.import_metadata'];
    for (const text of ['\u{1F600}', 'a\nb', '{"vm":\n']) {
      const [tag, message] = (await errorValueOf(importMetadata(call, { metadata: text }))) as [string, string];
      expect(tag).toBe('Internal_error');
      expect(message.startsWith('import_metadata: the metadata is not valid JSON: ')).toBe(true);
      expect(message.isWellFormed(), message).toBe(true);
      expect(message).not.toMatch(/[\r\n]/);
    }
    expect(await errorValueOf(importMetadata(call, { metadata: '{"vm":{"id":"\\ud800"}}' }))).toEqual([
      'Internal_error',
      'Type error at metadata.vm.id: expected a well-formed Unicode string',
    ]);
    expect(await errorValueOf(importMetadata(call, { metadata: '['.repeat(100_000) }))).toEqual(['Internal_error', 'request nesting exceeds 64 levels']);
  });

  it('HOST.combine_cpu_policies and HOST.is_compatible refuse a malformed featureset with §6.3\'s type error', async () => {
    const combine = hostHandlers['HOST.combine_cpu_policies'];
    expect(await errorValueOf(combine(call, { policy1: 'xyz', policy2: '' }))).toEqual([
      'Internal_error',
      `Type error at policy1: expected a CPU featureset (words of 8 hex digits joined by '-'), got "xyz"`,
    ]);
    const compatible = hostHandlers['HOST.is_compatible'];
    const long = `${'0'.repeat(8)}-${'\u{1F600}'.repeat(100)}`;
    const [, message] = (await errorValueOf(compatible(call, { vm_policy: '00000003', host_policy: long }))) as [string, string];
    expect(message.startsWith('Type error at host_policy: expected a CPU featureset')).toBe(true);
    expect(message.isWellFormed()).toBe(true);
    expect(message.length).toBeLessThan(200);
  });
});
