import { VmT, wireToJson, XenopsError } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import { XenopsCallError, XenopsClient } from './client.js';
import { XenopsProtocolError } from './errors.js';
import type { Transport } from './transport/transport.js';

/** A transport that records the bodies and answers from a script. */
function scripted(...replies: string[]): Transport & { bodies: string[] } {
  const bodies: string[] = [];
  return {
    describe: 'scripted',
    bodies,
    async send(body) {
      bodies.push(body);
      return replies.shift() ?? '{"result":null,"error":null,"id":1}';
    },
    async close() {},
  };
}

const paramsOf = (body: string) => (JSON.parse(body) as { params: [Record<string, unknown>] }).params[0];

describe('XenopsClient', () => {
  it('encodes typed arguments as named xenopsd arguments, leaving out what may be left out (§2.5)', async () => {
    const task = '{"result":"7","error":null,"id":1}';
    const t = scripted(task, task, task, task, '{"result":[],"error":null,"id":5}');
    const client = new XenopsClient(t, { debugInfo: 'unit-test' });
    await client.call('VM.shutdown', { id: 'a' });
    await client.call('VM.shutdown', { id: 'a', delay: 2.5 });
    await client.call('VM.suspend', { id: 'a', suspend_vdi: ['Local', '/tmp/a.img'] });
    await client.call('VBD.insert', { id: ['a', 'xvdb'], disk: ['VDI', 'sr/vdi'] });
    await client.call('VM.list');
    expect(t.bodies.map(paramsOf)).toEqual([
      { debug_info: 'unit-test', id: 'a' },
      { debug_info: 'unit-test', id: 'a', delay: 2.5 },
      { debug_info: 'unit-test', id: 'a', suspend_vdi: ['Local', '/tmp/a.img'] },
      { debug_info: 'unit-test', id: ['a', 'xvdb'], disk: ['VDI', 'sr/vdi'] },
      { debug_info: 'unit-test' },
    ]);
    expect(JSON.parse(t.bodies[0]!)).toMatchObject({ method: 'VM.shutdown', id: 1 });
  });

  it('decodes the result by its declared type, and encodes a record argument by its type', async () => {
    const vm = VmT.decode(
      {
        id: 'a',
        name: 'web',
        ssidref: 0,
        xsdata: {},
        platformdata: {},
        bios_strings: {},
        ty: ['PV', { boot: ['Direct', {}] }],
        suppress_spurious_page_faults: false,
        memory_static_max: 1,
        memory_dynamic_max: 1,
        memory_dynamic_min: 1,
        vcpu_max: 1,
        vcpus: 1,
        scheduler_params: { affinity: [] },
        on_crash: [],
        on_shutdown: [],
        on_reboot: [],
        pci_msitranslate: false,
        pci_power_mgmt: false,
      },
      'vm',
    );
    const t = scripted('{"result":"a","error":null,"id":1}', `{"result":[${wireToJson(VmT.encode(vm, 'xenopsd'))},{"power_state":"Halted","domids":[]}],"error":null,"id":2}`);
    const client = new XenopsClient(t);
    expect(await client.call('VM.add', { vm })).toBe('a');
    expect(paramsOf(t.bodies[0]!).vm).toMatchObject({ id: 'a', name: 'web' });
    const [config, state] = await client.call('VM.stat', { id: 'a' });
    expect(config.name).toBe('web');
    expect(state.power_state).toBe('Halted');
  });

  it('turns an error reply into XenopsCallError with the variant, and a non-JSON reply into XenopsProtocolError', async () => {
    const client = new XenopsClient(scripted('{"result":null,"error":["Does_not_exist",["VM","x/config"]],"id":1}', 'not json'));
    const e = await client.call('VM.stat', { id: 'x' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(XenopsCallError);
    expect(e).toBeInstanceOf(XenopsError);
    expect((e as XenopsCallError).value).toEqual(['Does_not_exist', ['VM', 'x/config']]);
    expect((e as XenopsCallError).tag).toBe('Does_not_exist');
    await expect(client.call('query')).rejects.toBeInstanceOf(XenopsProtocolError);
  });

  it('refuses a reply that is not the declared result', async () => {
    const client = new XenopsClient(scripted('{"result":"yes","error":null,"id":1}'));
    await expect(client.call('VM.exists', { id: 'a' })).rejects.toThrow(/the reply to VM.exists is not its declared result/);
  });
});
