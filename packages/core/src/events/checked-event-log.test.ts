/**
 * The second wall: every batch the engine can write reads back to itself (so appends pass the
 * check), and a batch that does not (a lone surrogate in a string protobuf carries, a number its
 * field cannot hold) is refused with a typed error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Operation } from '../model/operation.js';
import type { DeviceConfig } from '../model/devices.js';
import {
  dynamicId,
  dbl,
  errorValue,
  pci,
  safeInt,
  vbd,
  vgpu,
  vif,
  vm,
  vusb,
} from '../testing/arbitraries.js';
import { assertBatchRoundTrips, UndecodableEventError } from './checked-event-log.js';
import { decodeBatch, encodeBatch, type PendingEvent } from './codec.js';
import type { DomainRecord, EventBody } from './event.js';

// ---------------------------------------------------------------------------------------------
// Events as the engine writes them: any well-formed text (NUL and astral characters included) in
// the strings protobuf carries, numbers within what their fields hold.

const text = fc.string({ unit: 'binary', maxLength: 10 });
const nat = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const int32Nat = fc.nat({ max: 2 ** 31 - 1 });
const uint32 = fc.nat({ max: 2 ** 32 - 1 });
const finite = dbl;
const pairs = fc.array(fc.tuple(text, text), { maxLength: 3 });
const diskRef = fc.tuple(fc.constantFrom('Local' as const, 'VDI' as const), text);
const deviceKind = fc.constantFrom('vbd' as const, 'vif' as const, 'pci' as const, 'vgpu' as const, 'vusb' as const);
const guestAction = fc.constantFrom('reboot' as const, 'halt' as const, 'crash' as const, 'suspend' as const, 'soft_reset' as const);
const action = fc.constantFrom('Coredump' as const, 'Shutdown' as const, 'Start' as const, 'Pause' as const, 'Softreboot' as const);

const device: fc.Arbitrary<DeviceConfig> = fc.oneof(
  vbd.map((config) => ({ kind: 'vbd', config }) as DeviceConfig),
  vif.map((config) => ({ kind: 'vif', config }) as DeviceConfig),
  pci.map((config) => ({ kind: 'pci', config }) as DeviceConfig),
  vgpu.map((config) => ({ kind: 'vgpu', config }) as DeviceConfig),
  vusb.map((config) => ({ kind: 'vusb', config }) as DeviceConfig),
);

const operation: fc.Arbitrary<Operation> = fc
  .tuple(
    fc.oneof(
      fc.record({ kind: fc.constant('VM.start' as const), paused: fc.boolean(), unpause: fc.boolean() }),
      fc.record({ kind: fc.constant('VM.shutdown' as const), delay: finite, fallbackToHard: fc.boolean() }, { requiredKeys: ['kind', 'fallbackToHard'] }),
      fc.record({ kind: fc.constant('VM.suspend' as const), disk: diskRef }),
      fc.record({ kind: fc.constant('VM.set_xsdata' as const), xsdata: pairs }),
      fc.record({ kind: fc.constant('VM.set_memory_dynamic_range' as const), minimum: safeInt, maximum: safeInt }),
      fc.record({ kind: fc.constant('VM.run_script' as const), script: text }),
      fc.record({ kind: fc.constant('VM.import_metadata' as const), metadataJson: fc.jsonValue().map((v) => JSON.stringify(v)) }),
      fc.record({ kind: fc.constant('VBD.insert' as const), dev: text, disk: diskRef }),
      fc.record({ kind: fc.constant('VIF.set' as const), dev: text, field: fc.constant('carrier' as const), valueJson: fc.constant('true') }),
      fc.record({ kind: fc.constant('VM.guest_action' as const), action: guestAction, actions: fc.array(action, { maxLength: 3 }) }),
      fc.record({ kind: fc.constant('VM.check_state' as const), reason: text }),
      fc.record({
        kind: fc.constant('VM.migrate' as const),
        url: text,
        destination: text,
        vdiMap: pairs,
        vifMapJson: fc.constant('{"0":["Local","xenbr1"]}'),
        pciMapJson: fc.constant('{}'),
      }),
      fc.record({ kind: fc.constant('HOST.evacuate' as const), host: text }),
    ),
    fc.record({ autoDestroy: fc.boolean(), cancelAtPoint: fc.integer({ min: 1, max: 100 }) }, { requiredKeys: [] }),
  )
  .map(([body, extra]) => ({ ...body, ...extra }))
  // Handlers build operations with their keys in any order.
  .chain((op) => {
    const entries = Object.entries(op);
    return fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length }).map((e) => Object.fromEntries(e) as Operation);
  });

const domainRecord: fc.Arbitrary<DomainRecord> = fc.record({
  hvm: fc.boolean(),
  domainType: fc.constantFrom('Domain_HVM' as const, 'Domain_PV' as const, 'Domain_PVinPVH' as const, 'Domain_PVH' as const, 'Domain_undefined' as const),
  vcpus: nat,
  memoryTarget: nat,
  memoryLimit: nat,
  shadowMultiplier: finite,
  rtcTimeoffset: text,
  xsdata: pairs,
});

const body: fc.Arbitrary<EventBody> = fc.oneof(
  fc.record({ type: fc.constant('VmAdded' as const), vmId: text, config: vm }),
  fc.record({ type: fc.constant('VmRemoved' as const), vmId: text }),
  fc.record({ type: fc.constant('GuestModeChanged' as const), vmId: text, mode: fc.constantFrom('normal' as const, 'ignore' as const, 'hang' as const) }),
  fc.record({ type: fc.constant('VmOwnerChanged' as const), vmId: text, host: text, previousHost: text }),
  fc.record({
    type: fc.constant('VmOwnerChanged' as const),
    vmId: text,
    host: text,
    previousHost: text,
    migration: fc.record({ taskId: text.filter((t) => t !== ''), progress: fc.double({ min: 0, max: 1, noNaN: true }) }),
  }),
  fc.record({ type: fc.constant('MigrationReceived' as const), vmId: text, taskId: text }),
  fc.record({ type: fc.constant('TaskCreated' as const), vmId: text, operation, host: text, ctimeMs: nat }),
  fc.record({ type: fc.constant('TaskStarted' as const), taskId: text, startedMs: nat }),
  fc.record({ type: fc.constant('TaskProgressed' as const), taskId: text, progress: fc.double({ min: 0, max: 1, noNaN: true }), cancelPointsSeen: uint32, cancellable: fc.boolean(), atom: text }),
  fc.record({ type: fc.constant('TaskCompleted' as const), taskId: text, duration: finite, resultJson: fc.oneof(fc.constant(''), fc.jsonValue().map((v) => JSON.stringify(v))), cancelPointsSeen: uint32 }),
  fc.record({ type: fc.constant('TaskFailed' as const), taskId: text, error: errorValue, cancelPointsSeen: uint32, duration: finite }),
  fc.record({ type: fc.constant('TaskDestroyed' as const), taskId: text }),
  fc.record({ type: fc.constant('TaskCancelRequested' as const), taskId: text }),
  fc
    .tuple(
      fc.record({
        vmId: text,
        domid: int32Nat,
        host: text,
        startTime: finite,
        consoles: fc.array(fc.record({ protocol: fc.constantFrom('Rfb' as const, 'Vt100' as const), port: int32Nat, path: text }), { maxLength: 2 }),
      }),
      domainRecord,
    )
    .map(([d, r]) => ({ type: 'DomainCreated' as const, ...d, ...r })),
  ...(['DomainBuilt', 'DeviceModelCreated', 'DeviceModelDestroyed', 'DomainPaused', 'DomainUnpaused', 'DomainMarkedSurvivable', 'DomainDestroyed', 'VmRefreshed'] as const).map((type) =>
    fc.record({ type: fc.constant(type), vmId: text }),
  ),
  fc.record({ type: fc.constant('DomainShutdownAcknowledged' as const), vmId: text, reason: fc.constantFrom('poweroff' as const, 'reboot' as const) }),
  fc.record({ type: fc.constant('DomainVcpusSet' as const), vmId: text, vcpus: nat }),
  fc.record({ type: fc.constant('DomainShadowMultiplierSet' as const), vmId: text, multiplier: finite }),
  fc.record({ type: fc.constant('DomainMemoryRangeSet' as const), vmId: text, minimum: nat, maximum: nat }),
  fc.record({ type: fc.constant('DomainXsdataSet' as const), vmId: text, xsdata: pairs }),
  fc.record({ type: fc.constant('SuspendImageSaved' as const), vmId: text, image: fc.record({ disk: diskRef, record: domainRecord }) }),
  fc.record({ type: fc.constant('SuspendImageDropped' as const), vmId: text, reason: text }),
  fc.record({ type: fc.constant('DomainRestored' as const), vmId: text, record: domainRecord }),
  fc.record({ type: fc.constant('GuestActionRequested' as const), vmId: text, action: guestAction }),
  fc.record({ type: fc.constant('TaskDestroyOnFinishRequested' as const), taskId: text }),
  fc.record({ type: fc.constant('HostSettingChanged' as const), hostId: text, key: text, value: fc.jsonValue() }),
  fc.record({ type: fc.constant('CancelTriggerSet' as const), dbg: text, point: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
  fc.record({ type: fc.constant('CancelTriggerUsed' as const), dbg: text, taskId: text }),
  fc.record({ type: fc.constant('DeviceAdded' as const), vmId: text, device }),
  fc.record({ type: fc.constant('DeviceConfigChanged' as const), vmId: text, device, reason: text }),
  fc.record({ type: fc.constant('DeviceRemoved' as const), vmId: text, kind: deviceKind, dev: text }),
  fc.record({ type: fc.constant('DeviceActiveSet' as const), vmId: text, kind: deviceKind, dev: text, active: fc.boolean() }),
  fc.record({ type: fc.constant('DevicePlugged' as const), vmId: text, kind: deviceKind, dev: text, diskNumber: int32Nat }, { requiredKeys: ['type', 'vmId', 'kind', 'dev'] }),
  fc.record({ type: fc.constant('DeviceUnplugged' as const), vmId: text, kind: deviceKind, dev: text }),
  fc.record({ type: fc.constant('BarrierInjected' as const), barrierId: nat, vmId: text, entries: fc.array(fc.record({ id: dynamicId, seq: nat }), { maxLength: 3 }) }),
  fc.record({ type: fc.constant('BarrierRemoved' as const), barrierId: nat }),
) as fc.Arbitrary<EventBody>;

const pending: fc.Arbitrary<PendingEvent> = fc.record({
  audit: fc.record({ dbg: text, timeMs: nat, host: text, actor: text }),
  body,
});
const batch = fc.array(pending, { minLength: 1, maxLength: 4 });

/** Subtrees carried as JSON text inside the event (a lone surrogate there is escaped, not broken). */
const JSON_CARRIED = new Set(['config', 'device', 'operation', 'error', 'value', 'image', 'record', 'entries', 'resultJson']);

/** The paths of the strings protobuf carries itself, in a fixed order. */
function protoStrings(v: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (typeof v === 'string') return [path];
  if (Array.isArray(v)) return v.flatMap((x, i) => protoStrings(x, [...path, i]));
  if (typeof v === 'object' && v !== null) {
    return Object.entries(v).flatMap(([k, x]) => (JSON_CARRIED.has(k) || k === 'type' ? [] : protoStrings(x, [...path, k])));
  }
  return [];
}

/** A copy of `v` with the string at `path` followed by a lone surrogate. */
function poison<T>(v: T, path: ReadonlyArray<string | number>): T {
  if (path.length === 0) return `${v as string}\ud800` as T;
  const [head, ...rest] = path;
  const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, unknown>;
  copy[head!] = poison(copy[head!], rest);
  return copy as T;
}

describe('assertBatchRoundTrips', () => {
  it('property: every batch the engine can write reads back to itself, so its append goes through', () => {
    fc.assert(
      fc.property(batch, (events) => {
        const data = encodeBatch(events);
        expect(() => assertBatchRoundTrips('vm/x', data)).not.toThrow();
        expect(decodeBatch(1, data).map((e) => e.body.type)).toEqual(events.map((e) => e.body.type));
      }),
      { numRuns: 400 },
    );
  });

  it('property: a lone surrogate in any string protobuf carries is refused with a typed error', () => {
    fc.assert(
      fc.property(batch, fc.nat(), (events, pick) => {
        const paths = protoStrings(events);
        const bad = poison(events, paths[pick % paths.length]!);
        let error: unknown;
        try {
          assertBatchRoundTrips('vm/x', encodeBatch(bad));
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(UndecodableEventError);
        expect(error).toMatchObject({ name: 'UndecodableEventError', code: 'UNDECODABLE_EVENT', stream: 'vm/x' });
        expect((error as Error).message).toMatch(/^refused to append an event batch to vm\/x that does not decode back to itself: /);
        expect((error as Error).cause).toBeInstanceOf(Error);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses numbers a field cannot hold (they would read back as something else), naming the event', () => {
    const audit = { dbg: '', timeMs: 1, host: 'h', actor: 'a' };
    for (const body of [
      { type: 'DomainVcpusSet', vmId: 'v', vcpus: 0.5 },
      { type: 'DomainVcpusSet', vmId: 'v', vcpus: Number.NaN },
      { type: 'DomainMemoryRangeSet', vmId: 'v', minimum: 1e300, maximum: 1 },
      { type: 'TaskProgressed', taskId: '1', progress: 0, cancelPointsSeen: 2 ** 33, cancellable: true, atom: '' },
      { type: 'DevicePlugged', vmId: 'v', kind: 'vbd', dev: 'xvda', diskNumber: 2 ** 31 },
    ] as EventBody[]) {
      let error: unknown;
      try {
        assertBatchRoundTrips('vm/v', encodeBatch([{ audit, body }]));
      } catch (e) {
        error = e;
      }
      expect(error, body.type).toBeInstanceOf(UndecodableEventError);
      expect((error as UndecodableEventError).detail).toBe(`${body.type} reads back differently`);
    }
  });

  it('an operation built with its keys in any order is written in one order, so it reads back to itself', () => {
    const audit = { dbg: '', timeMs: 1, host: 'h', actor: 'a' };
    const body: EventBody = { type: 'TaskCreated', vmId: 'v', operation: { fallbackToHard: false, kind: 'VM.shutdown', delay: 3, autoDestroy: true }, host: 'h', ctimeMs: 1 };
    const data = encodeBatch([{ audit, body }]);
    expect(() => assertBatchRoundTrips('vm/v', data)).not.toThrow();
    expect(decodeBatch(1, data)[0]!.body).toEqual(body);
  });

  it('refuses bytes that are no event batch at all', () => {
    expect(() => assertBatchRoundTrips('vm/v', new Uint8Array([0x0a, 0x05, 0xff]))).toThrow(UndecodableEventError);
    expect(() => assertBatchRoundTrips('vm/v', new TextEncoder().encode('hello'))).toThrow(UndecodableEventError);
  });

  it('text in JSON-carried fields is escaped by JSON, so even a lone surrogate there reads back', () => {
    const events: PendingEvent[] = [{ audit: { dbg: '', timeMs: 1, host: 'h', actor: 'a' }, body: { type: 'HostSettingChanged', hostId: 'h', key: 'k', value: '\ud800' } }];
    expect(() => assertBatchRoundTrips('host/h', encodeBatch(events))).not.toThrow();
    expect(decodeBatch(1, encodeBatch(events))[0]!.body).toEqual(events[0]!.body);
  });
});
