/**
 * Commands from the bus are checked like requests: anyone who may publish on an agent's command
 * subject reaches `decodeCommand`, and what it lets through can end up in the log.
 */
import { describe, expect, it } from 'vitest';
import { MAX_WIRE_NESTING } from '../idl/wire-checks.js';
import { CommandDecodeError, decodeCommand, encodeCommand } from './command.js';
import { decide, type VmInput } from '../engine/decide.js';
import { debugTriggerTarget } from '../engine/debug-trigger.js';
import { XenopsError } from '../errors.js';
import { emptyVm } from './vm-aggregate.js';

/** A CommandEnvelope written byte by byte: field 1 `dbg`, field 2 `command_json`, any bytes. */
function envelope(dbg: Uint8Array | string, commandJson: Uint8Array | string): Uint8Array {
  const bytes = (v: Uint8Array | string) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v));
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const field = (tag: number, v: Buffer) => Buffer.concat([Buffer.from([tag]), varint(v.length), v]);
  return Buffer.concat([field(0x0a, bytes(dbg)), field(0x12, bytes(commandJson))]);
}

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('decodeCommand', () => {
  it('reads back what encodeCommand writes, NUL and astral characters included', () => {
    const req = { dbg: 'd\u0000\u{1F600}', command: { type: 'CancelTask', vmId: 'v\u0000', taskId: '7' } } as const;
    expect(decodeCommand(encodeCommand(req))).toEqual(req);
  });

  it('refuses a lone surrogate anywhere in the command JSON, with its path', () => {
    const e = errorOf(() => decodeCommand(envelope('d', '{"type":"CancelTask","vmId":"v\\ud800","taskId":"1"}')));
    expect(e).toBeInstanceOf(CommandDecodeError);
    expect(e).toMatchObject({ name: 'CommandDecodeError', code: 'UNDECODABLE_COMMAND' });
    expect((e as Error).message).toBe('Type error at command.vmId: expected a well-formed Unicode string');
    const inConfig = errorOf(() =>
      decodeCommand(envelope('d', '{"type":"SubmitOperation","vmId":"v","operation":{"kind":"VM.set_xsdata","xsdata":[["k","\\udc00"]]}}')),
    );
    expect((inConfig as Error).message).toBe('Type error at command.operation.xsdata[0][1]: expected a well-formed Unicode string');
  });

  it('refuses strings that are not UTF-8 (what protobuf writes for a lone surrogate)', () => {
    const cesu = Buffer.from([0x78, 0xed, 0xa0, 0x80]);
    for (const data of [envelope(cesu, '{"type":"Diagnose"}'), envelope('d', Buffer.concat([Buffer.from('{"type":"Diagnose","x":"'), cesu, Buffer.from('"}')]))]) {
      const e = errorOf(() => decodeCommand(data));
      expect(e).toBeInstanceOf(CommandDecodeError);
      expect((e as Error).message).toMatch(/^undecodable command: /);
    }
  });

  it('refuses nesting past the limit without overflowing the stack', () => {
    const deep = (n: number) => `{"type":"Diagnose","x":${'['.repeat(n)}${']'.repeat(n)}}`;
    expect(decodeCommand(envelope('d', deep(MAX_WIRE_NESTING - 1))).command).toEqual({ type: 'Diagnose' });
    for (const n of [MAX_WIRE_NESTING, 1_000_000]) {
      const e = errorOf(() => decodeCommand(envelope('d', deep(n))));
      expect((e as Error).message).toBe(`request nesting exceeds ${MAX_WIRE_NESTING} levels`);
    }
  });

  it('the migration commands between agents: well-formed ones decode, malformed ones are a typed error', () => {
    const ok = (json: string) => decodeCommand(envelope('d', json)).command;
    expect(ok('{"type":"MigrationChunk","vmId":"v","transferId":"7","offset":0,"total":3,"data":"YWJj"}')).toEqual({ type: 'MigrationChunk', vmId: 'v', transferId: '7', offset: 0, total: 3, data: 'YWJj' });
    expect(ok('{"type":"TakeOverMigration","vmId":"v","taskId":"7"}')).toEqual({ type: 'TakeOverMigration', vmId: 'v', taskId: '7' });
    expect(ok('{"type":"MigrationPrepare","vmId":"v","transferId":"7","payload":"{}"}')).toMatchObject({ type: 'MigrationPrepare', payload: '{}' });
    for (const bad of [
      '{"type":"MigrationChunk","vmId":"v","transferId":"7","offset":4,"total":3,"data":""}',
      '{"type":"MigrationChunk","vmId":"v","transferId":"7","offset":-1,"total":3,"data":""}',
      '{"type":"MigrationChunk","vmId":"v","transferId":"7","offset":0,"total":3,"data":5}',
      '{"type":"MigrationChunk","vmId":"","transferId":"7","offset":0,"total":3,"data":""}',
      '{"type":"TakeOverMigration","vmId":"v","taskId":"7","state":5}',
      '{"type":"TakeOverMigration","vmId":"v"}',
      '{"type":"MigrationPrepare","vmId":"v","transferId":"7","payload":{}}',
    ]) {
      expect(errorOf(() => decodeCommand(envelope('d', bad))), bad).toBeInstanceOf(CommandDecodeError);
    }
  });

  it('refuses integers the log could not read back (beyond 2^53)', () => {
    // set-cancel-trigger's point travels as text (DEBUG.trigger's args); the engine refuses it.
    expect(debugTriggerTarget('set-cancel-trigger', ['x', '9223372036854775808'])).toBeInstanceOf(XenopsError);
    expect(errorOf(() => decodeCommand(envelope('d', '{"type":"SetPoolSize","size":1e300}')))).toBeInstanceOf(CommandDecodeError);
    expect(
      errorOf(() => decodeCommand(envelope('d', '{"type":"SubmitOperation","vmId":"v","operation":{"kind":"VM.set_vcpus","vcpus":9223372036854775808}}'))),
    ).toBeInstanceOf(CommandDecodeError);
    expect(debugTriggerTarget('set-cancel-trigger', ['x', '9007199254740991'])).toMatchObject({ point: 9007199254740991 });
  });

  it('an operation kind that names an Object.prototype member is no operation (fuzz finding)', () => {
    for (const kind of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const e = errorOf(() => decodeCommand(envelope('d', JSON.stringify({ type: 'SubmitOperation', vmId: 'v', operation: { kind } }))));
      expect(e, kind).toBeInstanceOf(CommandDecodeError);
      expect((e as Error).message).toBe(`SubmitOperation: unknown operation ${JSON.stringify(kind)}`);
    }
  });

  it('an ImportVm whose document holds a lone surrogate or is not JSON is refused by decide, not thrown', () => {
    const ctx = { hostId: 'h', nowMs: 1 };
    for (const metadataJson of ['{"vm":{"id":"v\\ud800"}}', 'not json', '['.repeat(100_000)]) {
      const { command } = decodeCommand(envelope('d', JSON.stringify({ type: 'ImportVm', vmId: 'v', metadataJson, refuseExisting: false })));
      const out = decide(emptyVm('v'), command as VmInput, ctx);
      expect(out, metadataJson.slice(0, 20)).toMatchObject({ value: ['Internal_error', expect.any(String)] });
    }
  });
});
