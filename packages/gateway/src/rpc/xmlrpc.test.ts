import { describe, expect, it } from 'vitest';
import { IllFormedStringError, MAX_WIRE_NESTING, NestingLimitError, RpcDouble, type WireOut } from './wire.js';
import {
  XmlRpcParseError,
  XmlRpcValueError,
  encodeXmlRpcCall,
  encodeXmlRpcFault,
  encodeXmlRpcResponse,
  encodeXmlRpcValue,
  parseXmlRpcCall,
  parseXmlRpcResponse,
  parseXmlRpcValue,
} from './xmlrpc.js';

const call = (params: string, method = 'VM.start') =>
  `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params}</params></methodCall>`;
const one = (value: string) => parseXmlRpcCall(call(`<param>${value}</param>`)).params[0];
function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
/** Strips whitespace between tags. */
const squash = (s: string) => s.replace(/>\s+</g, '><').trim();

describe('parseXmlRpcCall: values', () => {
  it('decodes the four int forms of §3 (untagged stays a decimal string for the IDL)', () => {
    expect(one('<value><int>5</int></value>')).toBe(5);
    expect(one('<value><i4>5</i4></value>')).toBe(5);
    expect(one('<value><i8>5</i8></value>')).toBe(5);
    expect(one('<value>5</value>')).toBe('5');
    expect(one('<value><i8>-9007199254740991</i8></value>')).toBe(-9007199254740991);
    expect(one('<value><int> +7 </int></value>')).toBe(7);
    expect(Object.is(one('<value><int>-0</int></value>'), 0)).toBe(true);
    expect(one('<value><ex:i8 xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions">3</ex:i8></value>')).toBe(3);
  });

  it('keeps out-of-range ints as numbers and non-numeric ones as text (the IDL reports them)', () => {
    expect(one('<value><i4>99999999999</i4></value>')).toBe(99999999999);
    expect(one('<value><int>1.5</int></value>')).toBe('1.5');
    expect(one('<value><int>abc</int></value>')).toBe('abc');
  });

  it('decodes doubles', () => {
    expect(one('<value><double>1.5</double></value>')).toBe(1.5);
    expect(one('<value><double>-2</double></value>')).toBe(-2);
    expect(one('<value><double>1e3</double></value>')).toBe(1000);
    expect(one('<value><double>.5</double></value>')).toBe(0.5);
    expect(one('<value><double>x</double></value>')).toBe('x');
  });

  it('decodes booleans 1/0/true/false and passes anything else as text', () => {
    expect(one('<value><boolean>1</boolean></value>')).toBe(true);
    expect(one('<value><boolean>0</boolean></value>')).toBe(false);
    expect(one('<value><boolean>true</boolean></value>')).toBe(true);
    expect(one('<value><boolean>false</boolean></value>')).toBe(false);
    expect(one('<value><boolean>maybe</boolean></value>')).toBe('maybe');
  });

  it('decodes strings: tagged, untagged, empty, with whitespace kept', () => {
    expect(one('<value><string>abc</string></value>')).toBe('abc');
    expect(one('<value><string>  a b  </string></value>')).toBe('  a b  ');
    expect(one('<value><string>\n x\n</string></value>')).toBe('\n x\n');
    expect(one('<value>Running</value>')).toBe('Running');
    expect(one('<value> two words </value>')).toBe(' two words ');
    expect(one('<value/>')).toBe('');
    expect(one('<value></value>')).toBe('');
    expect(one('<value><string/></value>')).toBe('');
    expect(one('<value><string><![CDATA[<x>&]]></string></value>')).toBe('<x>&');
  });

  it('expands the predefined entities and character references', () => {
    expect(one('<value>&lt;a&gt; &amp; &quot;q&quot; &apos;</value>')).toBe('<a> & "q" \'');
    expect(one('<value><string>&#x41;&#66;&#x1F600;</string></value>')).toBe('AB\u{1F600}');
  });

  it('decodes base64 (to UTF-8) and dateTime.iso8601 as strings', () => {
    const b64 = Buffer.from('héllo wörld', 'utf8').toString('base64');
    expect(one(`<value><base64>${b64}</base64></value>`)).toBe('héllo wörld');
    expect(one('<value><base64>aGVs\n bG8=</base64></value>')).toBe('hello');
    expect(one('<value><dateTime.iso8601>20240101T10:00:00</dateTime.iso8601></value>')).toBe('20240101T10:00:00');
  });

  it('decodes nil and ex:nil as null', () => {
    expect(one('<value><nil/></value>')).toBeNull();
    expect(one('<value><ex:nil/></value>')).toBeNull();
    expect(one('<value><ex:nil xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"></ex:nil></value>')).toBeNull();
  });

  it('decodes nested structs and arrays, whitespace between elements ignored', () => {
    const v = one(`
      <value>
        <struct>
          <member><name>id</name><value><array><data><value>5f0c</value><value>xvda</value></data></array></value></member>
          <member>
            <name>extra_backend_keys</name>
            <value><struct><member><name>mode</name><value>r</value></member></struct></value>
          </member>
          <member><name>empty</name><value><array><data/></array></value></member>
          <member><value><int>1</int></value><name>reversed</name></member>
        </struct>
      </value>`);
    expect(v).toEqual({ id: ['5f0c', 'xvda'], extra_backend_keys: { mode: 'r' }, empty: [], reversed: 1 });
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(Object.getPrototypeOf((v as Record<string, unknown>)['extra_backend_keys'])).toBeNull();
  });

  it('structs: duplicate names, last wins; __proto__ is plain data', () => {
    const v = one(
      '<value><struct><member><name>a</name><value>1</value></member><member><name>__proto__</name><value>p</value></member><member><name>a</name><value>2</value></member></struct></value>',
    ) as Record<string, unknown>;
    expect(v['a']).toBe('2');
    expect(v['__proto__']).toBe('p');
    expect(Object.keys(v)).toEqual(['a', '__proto__']);
  });

  it('reads method name and the named / positional forms', () => {
    expect(parseXmlRpcCall(call('<param><value><struct><member><name>dbg</name><value>x</value></member></struct></value></param>'))).toEqual({
      method: 'VM.start',
      params: [{ dbg: 'x' }],
    });
    expect(parseXmlRpcCall(call('<param><value>dbg</value></param><param><value>vm1</value></param>')).params).toEqual(['dbg', 'vm1']);
    expect(parseXmlRpcCall('<methodCall><methodName> query </methodName></methodCall>')).toEqual({ method: 'query', params: [] });
    expect(parseXmlRpcCall('<methodCall><methodName>query</methodName><params/></methodCall>').params).toEqual([]);
  });

  it('reports non-XML-RPC params as XmlRpcValueError with the method', () => {
    for (const bad of [
      '<param><value><foo>1</foo></value></param>',
      '<param><value><int>1</int><int>2</int></value></param>',
      '<param><value>text<int>2</int></value></param>',
      '<param><value><struct><member><value>1</value></member></struct></value></param>',
      '<param><value><struct><member><name>a</name></member></struct></value></param>',
      '<param><value><array><value>1</value></array></value></param>',
      '<param></param>',
      '<bogus/>',
    ]) {
      let err: unknown;
      try {
        parseXmlRpcCall(call(bad));
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(XmlRpcValueError);
      expect((err as XmlRpcValueError).method).toBe('VM.start');
    }
  });

});

/** `n` arrays nested in one another, the innermost holding a string. */
const nestedArrays = (n: number) => '<value><array><data>'.repeat(n) + '<value>x</value>' + '</data></array></value>'.repeat(n);
/** `n` structs nested in one another under the key `k`. */
const nestedStructs = (n: number) =>
  '<value><struct><member><name>k</name>'.repeat(n) + '<value>x</value>' + '</member></struct></value>'.repeat(n);

describe('parseXmlRpcCall: the nesting limit', () => {
  it('accepts arrays and structs nested exactly MAX_WIRE_NESTING deep', () => {
    expect(() => parseXmlRpcCall(call(`<param>${nestedArrays(MAX_WIRE_NESTING)}</param>`))).not.toThrow();
    expect(() => parseXmlRpcCall(call(`<param>${nestedStructs(MAX_WIRE_NESTING)}</param>`))).not.toThrow();
    let v: unknown = parseXmlRpcCall(call(`<param>${nestedStructs(MAX_WIRE_NESTING)}</param>`)).params[0];
    for (let i = 0; i < MAX_WIRE_NESTING; i++) v = (v as Record<string, unknown>)['k'];
    expect(v).toBe('x');
  });

  it('refuses one level more with NestingLimitError, and far more without a stack overflow', () => {
    for (const body of [nestedArrays(MAX_WIRE_NESTING + 1), nestedStructs(MAX_WIRE_NESTING + 1), nestedArrays(100_000)]) {
      const err = errorOf(() => parseXmlRpcCall(call(`<param>${body}</param>`)));
      expect(err).toBeInstanceOf(NestingLimitError);
      expect((err as Error).message).toBe(`request nesting exceeds ${MAX_WIRE_NESTING} levels`);
    }
  });

  it('refuses deep nesting of any elements, not only arrays and structs', () => {
    const junk = '<value>'.repeat(100_000) + '</value>'.repeat(100_000);
    expect(errorOf(() => parseXmlRpcCall(call(`<param>${junk}</param>`)))).toBeInstanceOf(NestingLimitError);
    expect(errorOf(() => parseXmlRpcValue(nestedArrays(MAX_WIRE_NESTING + 1)))).toBeInstanceOf(NestingLimitError);
  });
});

describe('parseXmlRpcCall: only well-formed Unicode gets through', () => {
  it('refuses character references and characters XML cannot carry as parse errors', () => {
    for (const text of ['&#xD800;', '&#55296;', 'a&#xDC00;b', '&#xDC00;&#xD800;', '&#0;', '&#xFFFE;', '\u0000', '\uFFFE']) {
      const body = call(`<param><value>${text}</value></param>`);
      expect(errorOf(() => parseXmlRpcCall(body)), text).toBeInstanceOf(XmlRpcParseError);
    }
    // A character reference to a real character is fine.
    expect(one('<value>&#x1F600;&#233;</value>')).toBe('\u{1F600}\u00e9');
  });

  it('refuses <base64> whose bytes are not UTF-8, with the path of the argument', () => {
    const cesu = Buffer.from([0x61, 0xed, 0xa0, 0x80]).toString('base64'); // "a" + a surrogate written as UTF-8
    const named = errorOf(() =>
      parseXmlRpcCall(call(`<param><value><struct><member><name>vm</name><value><struct><member><name>xsdata</name><value><array><data><value>ok</value><value><base64>${cesu}</base64></value></data></array></value></member></struct></value></member></struct></value></param>`)),
    );
    expect(named).toBeInstanceOf(IllFormedStringError);
    expect((named as Error).message).toBe('Type error at vm.xsdata[1]: expected a well-formed Unicode string');
    const positional = errorOf(() => parseXmlRpcCall(call(`<param><value>dbg</value></param><param><value><base64>${cesu}</base64></value></param>`)));
    expect((positional as IllFormedStringError).path).toBe('params[1]');
    expect(one(`<value><base64>${Buffer.from('h\u00e9').toString('base64')}</base64></value>`)).toBe('h\u00e9');
  });
});

describe('parseXmlRpcCall: parse errors', () => {
  const parseError = (text: string) => {
    try {
      parseXmlRpcCall(text);
    } catch (e) {
      expect(e).toBeInstanceOf(XmlRpcParseError);
      return (e as Error).message;
    }
    throw new Error(`no error for ${text}`);
  };

  it('refuses a DOCTYPE (no entity expansion)', () => {
    expect(
      parseError('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><methodCall><methodName>&a;</methodName></methodCall>'),
    ).toMatch(/DOCTYPE/);
    expect(parseError('<!DOCTYPE methodCall SYSTEM "file:///etc/passwd"><methodCall><methodName>q</methodName></methodCall>')).toMatch(
      /DOCTYPE/,
    );
  });

  it('refuses undefined entities', () => {
    expect(parseError('<methodCall><methodName>&foo;</methodName></methodCall>')).toMatch(/entity/);
  });

  it('malformed XML', () => {
    expect(parseError('')).toBe('unexpected end of input');
    expect(parseError('   ')).toBe('unexpected end of input');
    expect(parseError('<methodCall><methodName>x</methodName>')).toMatch(/unclosed/);
    expect(parseError('<methodCall></methodResponse>')).toBeTruthy();
    expect(parseError('<a>1</a><b/>')).toBeTruthy();
    expect(parseError('{"method":"x"}')).toBeTruthy();
  });

  it('not a methodCall with a methodName', () => {
    expect(parseError('<methodResponse/>')).toMatch(/methodCall/);
    expect(parseError('<methodCall><params/></methodCall>')).toMatch(/methodName/);
    expect(parseError('<methodCall><methodName>  </methodName></methodCall>')).toMatch(/methodName/);
  });
});

describe('XML-RPC encoding', () => {
  it('emits the §3 forms', () => {
    expect(encodeXmlRpcValue('a<b>&"c"')).toBe('<value>a&lt;b&gt;&amp;&quot;c&quot;</value>');
    expect(encodeXmlRpcValue('')).toBe('<value></value>');
    expect(encodeXmlRpcValue(42)).toBe('<value><int>42</int></value>');
    expect(encodeXmlRpcValue(-2147483648)).toBe('<value><int>-2147483648</int></value>');
    expect(encodeXmlRpcValue(2147483648)).toBe('<value><i8>2147483648</i8></value>');
    expect(encodeXmlRpcValue(1073741824 * 8)).toBe('<value><i8>8589934592</i8></value>');
    expect(encodeXmlRpcValue(new RpcDouble(1))).toBe('<value><double>1</double></value>');
    expect(encodeXmlRpcValue(new RpcDouble(30))).toBe('<value><double>30</double></value>');
    expect(encodeXmlRpcValue(1.5)).toBe('<value><double>1.5</double></value>');
    expect(encodeXmlRpcValue(true)).toBe('<value><boolean>1</boolean></value>');
    expect(encodeXmlRpcValue(false)).toBe('<value><boolean>0</boolean></value>');
    expect(encodeXmlRpcValue(null)).toBe('<value><nil/></value>');
    expect(encodeXmlRpcValue([])).toBe('<value><array><data></data></array></value>');
    expect(encodeXmlRpcValue(new Map<string, WireOut>([['b', 1], ['a', 'x']]))).toBe(
      '<value><struct><member><name>b</name><value><int>1</int></value></member><member><name>a</name><value>x</value></member></struct></value>',
    );
  });

  it('keeps CR and replaces characters XML cannot carry', () => {
    expect(encodeXmlRpcValue('a\r\nb')).toBe('<value>a&#13;\nb</value>');
    expect(encodeXmlRpcValue('a\u0001b\uD800')).toBe('<value>a\uFFFDb\uFFFD</value>');
    expect(encodeXmlRpcValue('\u{1F600}')).toBe('<value>\u{1F600}</value>');
    expect(parseXmlRpcValue(encodeXmlRpcValue('a\r\nb\tc'))).toBe('a\r\nb\tc');
  });

  it('matches the §2.3 success example', () => {
    const v = new Map<string, WireOut>([
      ['Status', 'Success'],
      ['Value', 12],
    ]);
    expect(encodeXmlRpcResponse(v)).toBe(
      squash(`<?xml version="1.0"?><methodResponse><params><param><value><struct>
<member><name>Status</name><value>Success</value></member>
<member><name>Value</name><value><int>12</int></value></member>
</struct></value></param></params></methodResponse>`),
    );
  });

  it('matches the §2.3 failure example', () => {
    const v = new Map<string, WireOut>([
      ['Status', 'Failure'],
      ['ErrorDescription', ['Bad_power_state', ['Running', 'Halted']]],
    ]);
    expect(encodeXmlRpcResponse(v)).toBe(
      squash(`<?xml version="1.0"?><methodResponse><params><param><value><struct>
<member><name>Status</name><value>Failure</value></member>
<member><name>ErrorDescription</name><value><array><data>
<value>Bad_power_state</value>
<value><array><data><value>Running</value><value>Halted</value></data></array></value>
</data></array></value></member>
</struct></value></param></params></methodResponse>`),
    );
  });

  it('matches the §2.3 fault example', () => {
    expect(encodeXmlRpcFault(-32700, 'parse error: unexpected end of input')).toBe(
      squash(`<?xml version="1.0"?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>-32700</int></value></member>
<member><name>faultString</name><value>parse error: unexpected end of input</value></member>
</struct></value></fault></methodResponse>`),
    );
  });

  it('round-trips calls and responses', () => {
    const params: WireOut[] = [
      new Map<string, WireOut>([
        ['debug_info', 'a & b'],
        ['vm', new Map<string, WireOut>([['vcpus', 2], ['ty', ['HVM', new Map([['hap', true]])]], ['x', null], ['f', new RpcDouble(1.5)]])],
      ]),
    ];
    const parsed = parseXmlRpcCall(encodeXmlRpcCall('VM.add', params));
    expect(parsed.method).toBe('VM.add');
    expect(parsed.params).toEqual([{ debug_info: 'a & b', vm: { vcpus: 2, ty: ['HVM', { hap: true }], x: null, f: 1.5 } }]);
    expect(parseXmlRpcCall(encodeXmlRpcCall('a<b', ['dbg', 1])).method).toBe('a<b');

    expect(parseXmlRpcResponse(encodeXmlRpcResponse(new Map<string, WireOut>([['Status', 'Success'], ['Value', [1, 'x']]])))).toEqual({
      kind: 'response',
      value: { Status: 'Success', Value: [1, 'x'] },
    });
    expect(parseXmlRpcResponse(encodeXmlRpcFault(-32700, 'parse error: x'))).toEqual({
      kind: 'fault',
      code: -32700,
      message: 'parse error: x',
    });
    expect(() => parseXmlRpcResponse('<methodCall/>')).toThrow(XmlRpcParseError);
  });
});
