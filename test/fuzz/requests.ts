/**
 * Fuzz requests for every method of both dialects (taken from the gateway's method tables), in
 * every argument form of §2.5, encoded as JSON-RPC v1/v2 or XML-RPC bodies the way hostile clients
 * write them; and raw command messages for an agent's command subject.
 */
import fc from 'fast-check';
import type { ArgSpec, MethodSpec } from '@xenops/gateway';
import { hostileNumber, hostileString, hugeString, junk, oddString, RawNumber, scratchPath, valueOfType, type FVal, type Mood, type Pool } from './values.js';

export type Codec = 'json1' | 'json2' | 'xml';
/** How XML spells a character it cannot carry: a character reference (not well-formed) or `<base64>` bytes. */
export type XmlSpelling = 'charref' | 'base64';

export interface FuzzRequest {
  readonly method: string;
  readonly codec: Codec;
  readonly params: FVal | undefined;
  readonly id: FVal | undefined;
  readonly xml: XmlSpelling;
  /** A v2 batch of this request twice (JSON only). */
  readonly batch: boolean;
}

export interface MethodEntry {
  readonly dialect: 'xenopsd' | 'seed';
  readonly spec: Pick<MethodSpec, 'name' | 'args'>;
}

/** Methods the fuzz leaves out, and why: each would end the run by design, not by a bug. */
export const NOT_FUZZED: Readonly<Record<string, string>> = {
  'DEBUG.shutdown': 'stops the service (API.md §5.1)',
};

/** How a caller names the method: as §5 spells it, with the module's case changed (§1.1), or anything. */
function methodName(spec: Pick<MethodSpec, 'name'>): fc.Arbitrary<string> {
  const dot = spec.name.indexOf('.');
  const lowerModule = dot < 0 ? spec.name : `${spec.name.slice(0, dot).toLowerCase()}${spec.name.slice(dot)}`;
  return fc.oneof({ weight: 16, arbitrary: fc.constant(spec.name) }, { weight: 2, arbitrary: fc.constant(lowerModule) }, { weight: 1, arbitrary: hostileString });
}

function namedArgs(entry: MethodEntry, pool: Pool, mood: Mood): fc.Arbitrary<Record<string, FVal>> {
  const debugKey = entry.dialect === 'seed' ? 'dbg' : 'debug_info';
  const model: Record<string, fc.Arbitrary<FVal>> = {
    [debugKey]: fc.oneof({ weight: 2, arbitrary: fc.constant('fuzz') }, { weight: 3, arbitrary: mood === 'valid' ? oddString : hostileString }),
  };
  for (const a of entry.spec.args) model[a.key] = valueOfType(a.type, pool, mood);
  const all = fc.record(model) as fc.Arbitrary<Record<string, FVal>>;
  const some = fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, FVal>>;
  return fc
    .tuple(
      // Arguments are usually all given; any may be missing (§2.5 defaults or "Expecting named argument").
      fc.oneof({ weight: mood === 'valid' ? 8 : 2, arbitrary: all }, { weight: 1, arbitrary: some }),
      fc.dictionary(hostileString, junk, { maxKeys: mood === 'valid' ? 0 : 2 }),
      fc.boolean(),
    )
    .map(([known, extra, upper]) => {
      const args: Record<string, FVal> = { ...extra };
      // Keys are matched ignoring case (§2.5).
      for (const [k, v] of Object.entries(known)) args[upper ? k.toUpperCase() : k] = v;
      return args;
    });
}

function positionalArgs(specs: readonly ArgSpec[], pool: Pool, mood: Mood): fc.Arbitrary<FVal[]> {
  return fc
    .tuple(hostileString, fc.tuple(...specs.filter((s) => !s.namedOnly).map((s) => valueOfType(s.type, pool, mood))), fc.nat({ max: 3 }))
    .map(([dbg, args, drop]) => [dbg, ...args.slice(0, Math.max(0, args.length - drop))]);
}

/** Params in every form of §2.5: named, positional, none, malformed; a bare object for v2. */
function paramsOf(entry: MethodEntry, pool: Pool, mood: Mood): fc.Arbitrary<FVal | undefined> {
  const named = namedArgs(entry, pool, mood);
  return fc.oneof(
    { weight: 12, arbitrary: named.map((a) => [a] as FVal) },
    { weight: 3, arbitrary: named.map((a) => a as FVal) },
    { weight: 3, arbitrary: positionalArgs(entry.spec.args, pool, mood) },
    { weight: 1, arbitrary: fc.constantFrom<FVal | undefined>(undefined, null, []) },
    { weight: mood === 'valid' ? 0 : 1, arbitrary: junk },
  );
}

/** A request for one method, with now and then one argument replaced by a huge string. */
export function requestFor(entry: MethodEntry, pool: Pool): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      method: methodName(entry.spec),
      codec: fc.constantFrom<Codec>('json1', 'json2', 'xml'),
      params: fc.constantFrom<Mood>('valid', 'hostile').chain((mood) => paramsOf(entry, pool, mood)),
      id: fc.oneof({ weight: 6, arbitrary: fc.nat() }, { weight: 1, arbitrary: junk }, { weight: 1, arbitrary: fc.constant(undefined) }),
      xml: fc.constantFrom<XmlSpelling>('charref', 'base64'),
      batch: fc.nat({ max: 9 }).map((n) => n === 0),
      // One request in 40 carries a string of up to 1 MiB.
      huge: fc.oneof({ weight: 39, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: hugeString }),
    })
    .map(({ huge, ...r }) => (huge === undefined ? r : { ...r, params: withHuge(r.params, huge) }));
}

/** The params with their first string (or the first argument) replaced by `huge`. */
function withHuge(params: FVal | undefined, huge: string): FVal | undefined {
  if (Array.isArray(params) && params.length > 0) {
    const [first, ...rest] = params;
    if (first !== null && typeof first === 'object' && !Array.isArray(first) && !(first instanceof RawNumber)) {
      const keys = Object.keys(first);
      const k = keys[keys.length - 1] ?? 'debug_info';
      return [{ ...first, [k]: huge }, ...rest];
    }
    return [huge, ...rest];
  }
  return params;
}

/** Requests for every method of both dialects (and for names that are no method at all). */
export function anyRequest(methods: readonly MethodEntry[], pool: Pool): fc.Arbitrary<FuzzRequest> {
  const unknown: MethodEntry = { dialect: 'xenopsd', spec: { name: 'No.such_method', args: [] } };
  return fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...methods).chain((m) => requestFor(m, pool)) }, { weight: 1, arbitrary: requestFor(unknown, pool) });
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function toJsonText(v: FVal): string {
  if (v instanceof RawNumber) return v.json;
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : v > 0 ? '1e999' : v < 0 ? '-1e999' : 'NaN';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(toJsonText).join(',')}]`;
  return `{${Object.keys(v)
    .map((k) => `${JSON.stringify(k)}:${toJsonText(v[k]!)}`)
    .join(',')}}`;
}

function jsonBody(r: FuzzRequest, version: '1.0' | '2.0'): string {
  const members = [`"method":${JSON.stringify(r.method)}`];
  if (version === '2.0') members.unshift('"jsonrpc":"2.0"');
  if (r.params !== undefined) members.push(`"params":${toJsonText(r.params)}`);
  if (r.id !== undefined) members.push(`"id":${toJsonText(r.id)}`);
  return `{${members.join(',')}}`;
}

/** Characters XML 1.0 cannot carry (the encoder must spell them some other way). */
const NOT_IN_XML = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** UTF-8 as a lax encoder writes it: a lone surrogate becomes its three bytes, not U+FFFD. */
function laxUtf8(s: string): Buffer {
  if (s.isWellFormed()) return Buffer.from(s);
  const out = Buffer.allocUnsafe(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    if (c >= 0xd800 && c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
      const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
      out[n++] = 0xf0 | (cp >> 18);
      out[n++] = 0x80 | ((cp >> 12) & 0x3f);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
      i++;
    } else if (c < 0x80) out[n++] = c;
    else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      // Lone surrogates included: the three bytes a lax encoder writes for them.
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');

function xmlString(s: string, spelling: XmlSpelling): string {
  if (!NOT_IN_XML.test(s)) return `<value>${escapeXml(s)}</value>`;
  if (spelling === 'base64') return `<value><base64>${laxUtf8(s).toString('base64')}</base64></value>`;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
    if (pair) {
      out += s.slice(i, i + 2);
      i++;
    } else out += NOT_IN_XML.test(s[i]!) ? `&#x${c.toString(16)};` : escapeXml(s[i]!);
  }
  return `<value><string>${out}</string></value>`;
}

function xmlValue(v: FVal, spelling: XmlSpelling): string {
  if (v instanceof RawNumber) return `<value>${v.xml}</value>`;
  if (v === null) return '<value><nil/></value>';
  switch (typeof v) {
    case 'string':
      return xmlString(v, spelling);
    case 'boolean':
      return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
    case 'number':
      if (!Number.isFinite(v)) return `<value><double>${v}</double></value>`;
      if (Number.isInteger(v)) return Math.abs(v) < 2 ** 31 ? `<value><int>${v}</int></value>` : `<value><i8>${BigInt(v)}</i8></value>`;
      return `<value><double>${v}</double></value>`;
  }
  if (Array.isArray(v)) return `<value><array><data>${v.map((x) => xmlValue(x, spelling)).join('')}</data></array></value>`;
  const members = Object.keys(v).map((k) => `<member><name>${escapeXml(k)}</name>${xmlValue(v[k]!, spelling)}</member>`);
  return `<value><struct>${members.join('')}</struct></value>`;
}

function xmlBody(r: FuzzRequest): string {
  const params = r.params === undefined || r.params === null ? [] : Array.isArray(r.params) ? r.params : [r.params];
  const method = NOT_IN_XML.test(r.method) || r.method.trim() === '' ? 'No.such_method' : escapeXml(r.method);
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((p) => `<param>${xmlValue(p, r.xml)}</param>`).join('')}</params></methodCall>`;
}

const bodies = new WeakMap<FuzzRequest, Buffer>();

/** The request's HTTP (or NATS) body. XML bytes are written laxly: a lone surrogate in text stays one. */
export function bodyOf(r: FuzzRequest): Buffer {
  let body = bodies.get(r);
  if (body === undefined) bodies.set(r, (body = encodeBody(r)));
  return body;
}

function encodeBody(r: FuzzRequest): Buffer {
  switch (r.codec) {
    case 'json1':
      return Buffer.from(r.batch ? `[${jsonBody(r, '2.0')},${jsonBody(r, '1.0')}]` : jsonBody(r, '1.0'));
    case 'json2':
      return Buffer.from(r.batch ? `[${jsonBody(r, '2.0')},${jsonBody(r, '2.0')}]` : jsonBody(r, '2.0'));
    case 'xml':
      return laxUtf8(xmlBody(r));
  }
}

// ---------------------------------------------------------------------------------------------
// Agent command messages (the bus protocol of core/model/command.ts, written byte by byte)

const COMMAND_TYPES = ['AddVm', 'AddDevice', 'RemoveDevice', 'ImportVm', 'SubmitOperation', 'CancelTask', 'DestroyTaskOnFinish', 'DestroyTask', 'DebugTrigger', 'SetPoolSize', 'SetHostSetting', 'Diagnose', 'HostFacts', 'Nope'];
const FIELD_NAMES = ['vmId', 'taskId', 'taskIds', 'kind', 'dev', 'config', 'operation', 'metadataJson', 'refuseExisting', 'cmd', 'args', 'key', 'value', 'size'];

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
const field = (tag: number, v: Buffer) => Buffer.concat([Buffer.from([tag]), varint(v.length), v]);

/** A CommandEnvelope (`dbg` = 1, `command_json` = 2) with any bytes in its strings. */
export function commandEnvelope(dbg: Buffer, commandJson: Buffer): Buffer {
  return Buffer.concat([field(0x0a, dbg), field(0x12, commandJson)]);
}

/** Commands as a gateway would send them, with odd (well-formed) text: they reach the actors and the log. */
function wellFormedCommand(pool: Pool, vmConfig: FVal): fc.Arbitrary<FVal> {
  const vm = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool.vms) }, { weight: 1, arbitrary: oddString });
  const task = fc.oneof(fc.nat({ max: 40 }).map(String), oddString);
  const dev = fc.oneof(fc.constantFrom('xvda', 'xvdb', '0', '1'), oddString);
  const small = fc.integer({ min: -1, max: 8 });
  const disk = fc.tuple(fc.constantFrom('Local', 'VDI'), oddString).map(([k, p]) => [k, scratchPath(p)]);
  const operation = fc.oneof(
    fc.record({ kind: fc.constant('VM.start'), paused: fc.boolean(), unpause: fc.boolean() }),
    fc.record({ kind: fc.constant('VM.shutdown'), delay: small, fallbackToHard: fc.boolean() }),
    fc.record({ kind: fc.constant('VM.suspend'), disk }),
    fc.record({ kind: fc.constant('VM.set_vcpus'), vcpus: small }),
    fc.record({ kind: fc.constant('VM.set_xsdata'), xsdata: fc.array(fc.tuple(oddString, oddString), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('VM.run_script'), script: oddString }),
    fc.record({ kind: fc.constant('VBD.insert'), dev, disk }),
    fc.record({ kind: fc.constant('VM.check_state'), reason: oddString }),
    fc.record({ kind: fc.constant('VM.delay'), delay: fc.constantFrom(0, 0.01) }),
  );
  return fc.oneof(
    fc.record({ type: fc.constant('AddVm'), refuseExisting: fc.boolean(), config: fc.constant(vmConfig) }),
    fc.record({ type: fc.constant('AddDevice'), kind: fc.constant('vbd'), config: fc.tuple(vm, dev).map(([v, d]): FVal => ({ id: [v, d], mode: 'ReadOnly', ty: 'CDROM' })) }),
    fc.record({ type: fc.constant('RemoveDevice'), vmId: vm, kind: fc.constantFrom('vbd', 'vif', 'pci', 'vgpu', 'vusb'), dev }),
    fc.record({ type: fc.constant('SubmitOperation'), vmId: vm, operation }),
    fc.record({ type: fc.constantFrom('CancelTask', 'DestroyTaskOnFinish'), vmId: vm, taskId: task }),
    fc.record({ type: fc.constant('DestroyTask'), vmId: vm, taskIds: fc.array(task, { minLength: 1, maxLength: 3 }) }),
    fc.record({ type: fc.constant('DebugTrigger'), cmd: fc.constantFrom('reboot', 'halt', 'crash', 'check-vbd-plug-ordering'), args: vm.map((v) => [v]) }),
    fc.record({ type: fc.constant('DebugTrigger'), cmd: fc.constant('no-ack'), args: fc.tuple(vm, fc.constantFrom('normal', 'ignore')) }),
    fc.record({ type: fc.constant('DebugTrigger'), cmd: fc.constant('set-cancel-trigger'), args: fc.tuple(oddString, fc.integer({ min: 1, max: 5 }).map(String)) }),
    fc.record({ type: fc.constant('SetHostSetting'), key: fc.constantFrom('debug_keys', 'numa_affinity_policy'), value: oddString }),
    fc.constant({ type: 'HostFacts' }),
    fc.record({ type: fc.constant('SetPoolSize'), size: fc.integer({ min: 1, max: 16 }) }),
    fc.constant({ type: 'Diagnose' }),
    fc.record({ type: fc.constant('ImportVm'), vmId: vm, metadataJson: oddString, refuseExisting: fc.boolean() }),
  ) as fc.Arbitrary<FVal>;
}

/** Messages a hostile publisher sends to an agent: commands with hostile fields, broken JSON, broken protobuf. */
export function anyCommandMessage(pool: Pool, vmConfig: FVal): fc.Arbitrary<Buffer> {
  const value = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom<FVal>(...pool.vms, ...pool.vms, ...pool.strings) },
    { weight: 3, arbitrary: hostileString as fc.Arbitrary<FVal> },
    { weight: 2, arbitrary: hostileNumber },
    { weight: 1, arbitrary: fc.constant(vmConfig) },
    { weight: 1, arbitrary: fc.constantFrom<FVal>({ kind: 'VM.start', paused: false, unpause: false }, { kind: 'VM.set_vcpus', vcpus: 2 ** 63 }, { kind: 'VM.set_xsdata', xsdata: [['k', '\ud800']] }) },
    { weight: 2, arbitrary: junk },
  );
  const command = fc
    .tuple(fc.constantFrom(...COMMAND_TYPES), fc.dictionary(fc.constantFrom(...FIELD_NAMES), value, { maxKeys: 6 }))
    .map(([type, fields]) => toJsonText({ type, ...fields }));
  const json = fc.oneof(
    { weight: 8, arbitrary: command.map((t) => laxUtf8(t)) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '"x"', `{"type":"Diagnose","x":${'['.repeat(100_000)}`).map((t) => Buffer.from(t)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
  );
  const dbg = fc.oneof({ weight: 4, arbitrary: hostileString.map((s) => laxUtf8(s)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)) });
  return fc.oneof(
    { weight: 10, arbitrary: fc.tuple(dbg, json).map(([d, j]) => commandEnvelope(d, j)) },
    { weight: 10, arbitrary: fc.tuple(oddString, wellFormedCommand(pool, vmConfig)).map(([d, c]) => commandEnvelope(Buffer.from(d), Buffer.from(toJsonText(c)))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  );
}
