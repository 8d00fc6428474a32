/**
 * The engine's flags of xenopsd: `--backend NAME` (the agent's hypervisor backend; the simulator
 * by default) and `--crash-loop-window-s S` (API.md §7.5's engine setting `crash_loop_window_s`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { X, waitTask } from '../support/rpc.js';
import { vmId, xenopsdVm } from '../support/vms.js';
import { cleanupAll, runXenopsdToExit, spawnXenopsd } from '../support/xenopsd.js';
import { waitVm } from '../support/ops.js';

afterAll(cleanupAll);

describe('xenopsd --backend', () => {
  it('--help lists the backends; an unknown one is refused in one line naming them, exit status 2', async () => {
    const help = await runXenopsdToExit(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--backend NAME\s+the agent's hypervisor backend: simulator, qemu \(default simulator\)/);
    expect(help.stdout).toMatch(/--crash-loop-window-s S/);
    const bad = await runXenopsdToExit(['--backend', 'vmware']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe('xenopsd: --backend must be one of simulator, qemu, not "vmware"');
    const window = await runXenopsdToExit(['--crash-loop-window-s', 'soon']);
    expect(window.code).toBe(2);
    expect(window.stderr.split('\n')[0]).toBe('xenopsd: --crash-loop-window-s expects a number of seconds (e.g. 120 or 0.5), got "soon"');
  });

  it('runs with the backend it names, and reports its host facts', async () => {
    const svc = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--backend', 'simulator'] });
    expect(svc.stderr).toMatch(/serving commands \(backend simulator\)/);
    const c = svc.client();
    expect(await c.ok('HOST.get_console_data', X())).toBe('xenops-ts simulator');
    expect(await c.ok('HOST.get_total_memory_mib', X())).toBe(1048576);
  });
});

describe('xenopsd --crash-loop-window-s', () => {
  it('a guest crashing right after its start is restarted when the window is 0, halted with the default 120 s', async () => {
    const crashOnce = async (extraArgs: string[]) => {
      const svc = await spawnXenopsd({ mode: 'embedded', extraArgs });
      const c = svc.client();
      const id = vmId('crash');
      await c.ok('VM.add', X({ vm: xenopsdVm(id, { on_crash: ['Start'] }) }));
      expect((await waitTask(c, await c.ok<string>('VM.start', X({ id, paused: false })))).state[0]).toBe('Completed');
      expect((await waitTask(c, await c.ok<string>('VM.unpause', X({ id })))).state[0]).toBe('Completed');
      const [, before] = await c.ok<[unknown, { domids: number[] }]>('VM.stat', X({ id }));
      await c.ok('DEBUG.trigger', X({ cmd: 'crash', args: [id] }));
      return { c, id, domid: before.domids[0]! };
    };
    const restarted = await crashOnce(['--crash-loop-window-s', '0']);
    await waitVm(restarted.c, restarted.id, (s) => s?.[1].power_state === 'Running' && s[1].domids[0]! > restarted.domid, 'restarted by on_crash Start');
    const guarded = await crashOnce([]);
    await waitVm(guarded.c, guarded.id, (s) => s?.[1].power_state === 'Halted', 'halted by the crash-loop guard');
  });
});
