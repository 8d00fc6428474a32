/**
 * `xenops backup` and `xenops restore` end to end (issue 11 item 8), per store, with the real
 * binaries: a service runs a mixed workload (VMs added, started, shut down, devices, tasks) and
 * keeps writing while `xenops backup` copies it; the file is restored onto a fresh service (a new
 * data dir; a fresh NATS server for the NATS stream), which starts, passes `xenops verify`, and
 * answers `VM.list`, `Task.list` and the device lists exactly as the original did at the
 * backup's seq. Bad input at the command line is refused with one clear line and its exit status.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startOwnNatsServer, type OwnNatsServer } from '../support/own-nats.js';
import { X, type RpcClient } from '../support/rpc.js';
import { xenopsdVm } from '../support/vms.js';
import { cleanupAll, makeTempDir, NATS_URL, REPO_ROOT, runXenopsdToExit, spawnXenopsd, type Xenopsd } from '../support/xenopsd.js';

const XENOPS_BIN = path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js');
const owned: OwnNatsServer[] = [];
afterAll(async () => {
  for (const s of owned) await s.stop('SIGKILL');
  await cleanupAll();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function xenops(args: string[]): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, XENOPS_URL: undefined, XENOPS_SOCKET: undefined, XENOPS_TOKEN_FILE: undefined };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [XENOPS_BIN, ...args], { env: env as NodeJS.ProcessEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`expected exit 0, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitTask(c: RpcClient, id: string): Promise<string> {
  const until = Date.now() + 20_000;
  for (;;) {
    const t = await c.ok<{ state: [string] }>('Task.stat', X({ id }));
    if (t.state[0] !== 'Pending') return t.state[0];
    if (Date.now() > until) throw new Error(`task ${id} still Pending`);
    await sleep(20);
  }
}

/** VMs added, devices, started, shut down, a task destroyed: some of everything the log records. */
async function mixedWorkload(c: RpcClient, tag: string): Promise<string[]> {
  const vms: string[] = [];
  for (let i = 0; i < 6; i++) {
    const id = `${tag}-${i}`;
    await c.ok('VM.add', X({ vm: xenopsdVm(id, { name: `web${i}` }) }));
    await c.ok('VBD.add', X({ vbd: { id: [id, 'xvda'], backend: ['VDI', `sr/${id}`] } }));
    if (i % 2 === 0) await c.ok('VIF.add', X({ vif: { id: [id, 'eth0'], position: 0 } }));
    vms.push(id);
  }
  const starts = await Promise.all(vms.slice(0, 4).map((id) => c.ok<string>('VM.start', X({ id, paused: false }))));
  for (const t of starts) expect(await waitTask(c, t)).toBe('Completed');
  await c.ok('Task.destroy', X({ id: starts[0] }));
  expect(await waitTask(c, await c.ok<string>('VM.unpause', X({ id: vms[1] })))).toBe('Completed');
  expect(await waitTask(c, await c.ok<string>('VM.shutdown', X({ id: vms[2], delay: 0 })))).toBe('Completed');
  return vms;
}

/** Keeps adding and starting VMs until stopped; returns how many calls were acknowledged. */
function backgroundWriter(c: RpcClient, tag: string): { stop(): Promise<number> } {
  let running = true;
  let acked = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const id = `${tag}-bg-${i}`;
      if ((await c.named('VM.add', X({ vm: xenopsdVm(id) }))).ok) acked++;
      if (i % 2 === 0 && (await c.named('VM.start', X({ id, paused: true }))).ok) acked++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return acked;
    },
  };
}

async function stateAt(c: RpcClient, seq: number, vms: readonly string[]) {
  const asOf = { as_of: seq };
  const vbds: Record<string, unknown> = {};
  const vifs: Record<string, unknown> = {};
  for (const vm of vms) {
    vbds[vm] = await c.ok('VBD.list', X({ id: vm, ...asOf }));
    vifs[vm] = await c.ok('VIF.list', X({ id: vm, ...asOf }));
  }
  const byId = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
  return {
    vms: (await c.ok<unknown[]>('VM.list', X(asOf))).sort(byId),
    tasks: (await c.ok<unknown[]>('Task.list', X(asOf))).sort(byId),
    vbds,
    vifs,
  };
}

describe.each(['embedded', 'nats'] as const)('backup and restore of the %s store', (store) => {
  it('backs up a service that keeps writing and restores it onto a fresh one: verify clean, same state at the backup seq', async () => {
    const original = await spawnXenopsd({ mode: store });
    const c = original.client();
    const vms = await mixedWorkload(c, `bk-${store}`);
    const writer = backgroundWriter(c, `bk-${store}`);
    await sleep(200);

    const dir = await makeTempDir(`xbk-${store}`);
    const file = path.join(dir, 'backup.xbk');
    const backup = JSON.parse(ok(await xenops(['--url', original.url!, '--json', 'backup', file])).stdout) as {
      file: string;
      mode: string;
      prefix: string | null;
      first_seq: number;
      head_seq: number;
      bytes: number;
    };
    const acked = await writer.stop();
    expect(acked, 'the service kept acknowledging writes during the backup').toBeGreaterThan(0);
    expect(backup).toMatchObject({ file, mode: store, prefix: store === 'nats' ? original.natsPrefix : null, first_seq: 1 });
    expect(backup.head_seq).toBeGreaterThan(20);

    // The fresh target: an empty data dir, or a NATS server where the prefix is free.
    let target: string[];
    let ownNats: OwnNatsServer | undefined;
    if (store === 'embedded') target = ['--data-dir', path.join(dir, 'restored')];
    else {
      ownNats = await startOwnNatsServer();
      owned.push(ownNats);
      target = ['--nats', ownNats.url];
    }
    const restored = JSON.parse(ok(await xenops(['restore', file, ...target, '--json'])).stdout) as { head_seq: number; first_seq: number; start: string };
    expect(restored.first_seq).toBe(1);
    // Embedded: exactly the copy's seq. NATS: the snapshot may hold messages appended while it ran.
    if (store === 'embedded') expect(restored.head_seq).toBe(backup.head_seq);
    else expect(restored.head_seq).toBeGreaterThanOrEqual(backup.head_seq);
    const seq = restored.head_seq;

    let fresh: Xenopsd;
    if (store === 'embedded') {
      expect(restored.start).toBe(`xenopsd --data-dir ${path.join(dir, 'restored')}`);
      fresh = await spawnXenopsd({ mode: 'embedded', dataDir: path.join(dir, 'restored') });
    } else {
      expect(restored.start).toBe(`xenopsd --nats ${ownNats!.url} --nats-prefix ${original.natsPrefix}`);
      // mode 'embedded' only means no --nats of the helper's own: ours is in extraArgs.
      fresh = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--nats', ownNats!.url, '--nats-prefix', original.natsPrefix!] });
    }
    const verify = ok(await xenops(['--url', fresh.url!, 'verify']));
    expect(verify.stdout).toContain('ok: the read model is exactly the replay of the log');
    const f = fresh.client();
    const want = await stateAt(c, seq, vms);
    expect(want.vms.length).toBeGreaterThan(vms.length);
    expect(await stateAt(f, seq, vms)).toEqual(want);
    // The restored service is a live one: it takes new writes after the restored seqs.
    await f.ok('VM.add', X({ vm: xenopsdVm(`bk-${store}-after-restore`) }));
    expect((await f.ok<number>('UPDATES.last_id', X())) > seq).toBe(true);

    // A restore never overwrites: the same target again is refused (the restored service runs on
    // it), and the wrong mode too.
    const again = await xenops(['restore', file, ...target]);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(
      store === 'embedded'
        ? new RegExp(`^xenops restore: data dir ${path.join(dir, 'restored')} is in use by process ${fresh.pid} `)
        : /^xenops restore: stream .* already exists at .*a restore never overwrites a log/,
    );
    const wrongMode = await xenops(['restore', file, ...(store === 'embedded' ? ['--nats', NATS_URL] : ['--data-dir', path.join(dir, 'x')])]);
    expect(wrongMode.code).toBe(2);
    expect(wrongMode.stderr).toBe(
      store === 'embedded'
        ? `xenops restore: ${file} is a backup of an embedded store, not of a NATS stream: restore it with --data-dir DIR\n`
        : `xenops restore: ${file} is a backup of the NATS stream of prefix ${original.natsPrefix}, not of an embedded store: restore it with --nats URL\n`,
    );
    if (store === 'nats') {
      const renamed = await xenops(['restore', file, '--nats', ownNats!.url, '--nats-prefix', 'another']);
      expect(renamed.code).toBe(2);
      expect(renamed.stderr).toContain(`so it can only be restored as prefix ${original.natsPrefix}`);
    }
    await fresh.stop();
    await original.stop();
  });
});

describe('xenops backup and restore refuse bad input', () => {
  it('missing, truncated, damaged and foreign files, and no or two targets', async () => {
    const service = await spawnXenopsd({ mode: 'embedded' });
    await service.client().ok('VM.add', X({ vm: xenopsdVm('one') }));
    const dir = await makeTempDir('xbk-bad');
    const file = path.join(dir, 'good.xbk');
    ok(await xenops(['--url', service.url!, 'backup', file]));
    const bytes = await readFile(file);

    const missing = await xenops(['restore', path.join(dir, 'nope.xbk'), '--data-dir', path.join(dir, 'd1')]);
    expect(missing).toMatchObject({ code: 3, stderr: `xenops restore: ${path.join(dir, 'nope.xbk')} does not exist\n` });

    const truncated = path.join(dir, 'truncated.xbk');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const t = await xenops(['restore', truncated, '--data-dir', path.join(dir, 'd2')]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(new RegExp(`^xenops restore: ${truncated} is truncated: .*; it cannot be restored: use another backup\\n$`));

    const damaged = path.join(dir, 'damaged.xbk');
    const flipped = Buffer.from(bytes);
    flipped[bytes.length - 200]! ^= 0x01;
    await writeFile(damaged, flipped);
    const d = await xenops(['restore', damaged, '--data-dir', path.join(dir, 'd3')]);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain(`${damaged} is damaged: its content does not match the checksum written at its end`);

    const foreign = path.join(dir, 'foreign.xbk');
    await writeFile(foreign, 'just some text\n');
    const fo = await xenops(['restore', foreign, '--data-dir', path.join(dir, 'd4')]);
    expect(fo).toMatchObject({ code: 2, stderr: expect.stringContaining(`${foreign} is not a xenops backup`) });
    for (const target of ['d2', 'd3', 'd4']) {
      // Nothing was created for a refused file.
      await expect(readFile(path.join(dir, target, 'xenops.db'))).rejects.toMatchObject({ code: 'ENOENT' });
    }

    expect(await xenops(['restore', file])).toMatchObject({ code: 2, stderr: expect.stringContaining('restore needs a target: --data-dir DIR for an embedded store, or --nats URL for NATS') });
    expect(await xenops(['restore', file, '--data-dir', dir, '--nats', NATS_URL])).toMatchObject({ code: 2, stderr: expect.stringContaining('not both') });
    const notEmpty = await xenops(['restore', file, '--data-dir', dir]);
    expect(notEmpty).toMatchObject({ code: 4, stderr: expect.stringMatching(new RegExp(`^xenops restore: data dir ${dir} is not empty \\(it holds .*\\): a restore never overwrites`)) });

    // xenops restore runs xenopsd --restore, which an operator may run too: plain words, and the
    // exit statuses of xenopsd --help.
    const direct = path.join(dir, 'direct');
    const restored = await runXenopsdToExit(['--restore', file, '--data-dir', direct]);
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    expect(restored.stdout).toMatch(new RegExp(`^Restored seqs 1\\.\\.\\d+ from ${file} into ${path.join(direct, 'xenops.db')}\nStart the service on it with: xenopsd --data-dir ${direct}\n$`));
    const refused = await runXenopsdToExit(['--restore', file, '--data-dir', direct]);
    expect(refused.code).toBe(73);
    expect(refused.stderr).toContain(`restore failed: data dir ${direct} is not empty`);
    expect(await runXenopsdToExit(['--restore', path.join(dir, 'nope.xbk'), '--data-dir', path.join(dir, 'd5')])).toMatchObject({ code: 66 });
    expect(await runXenopsdToExit(['--restore', truncated, '--data-dir', path.join(dir, 'd6')])).toMatchObject({ code: 65 });

    // backup: never over an existing file unless asked, HTTP only.
    const exists = await xenops(['--url', service.url!, 'backup', file]);
    expect(exists).toMatchObject({ code: 2, stderr: `xenops backup: ${file} exists; choose another name, or pass --force to replace it\n` });
    ok(await xenops(['--url', service.url!, 'backup', file, '--force']));
    const overNats = await xenops(['--nats', NATS_URL, 'backup', path.join(dir, 'n.xbk')]);
    expect(overNats).toMatchObject({ code: 2, stderr: expect.stringContaining('served over HTTP only') });
    const down = await xenops(['--url', 'http://127.0.0.1:1', 'backup', path.join(dir, 'down.xbk')]);
    expect(down.code).toBe(5);
    await expect(readFile(path.join(dir, '.down.xbk.partial'))).rejects.toMatchObject({ code: 'ENOENT' });

    for (const cmd of ['backup', 'restore']) {
      const help = ok(await xenops([cmd, '--help']));
      expect(help.stdout).toMatch(new RegExp(`^Usage: xenops ${cmd} FILE`));
      expect(help.stdout).toContain('Examples:');
    }
    await service.stop();
  });

  it('the backup route obeys the token rules of API.md §2.1', async () => {
    const dir = await makeTempDir('xbk-token');
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, 's3cret\n');
    const service = await spawnXenopsd({ mode: 'embedded', extraArgs: ['--token-file', tokenFile] });
    const refused = await xenops(['--url', service.url!, 'backup', path.join(dir, 'a.xbk')]);
    expect(refused.code).toBe(8);
    ok(await xenops(['--url', service.url!, '--token-file', tokenFile, 'backup', path.join(dir, 'a.xbk')]));
    // The Unix socket needs no token, as for every route.
    ok(await xenops(['--socket', service.socketPath!, 'backup', path.join(dir, 'b.xbk')]));
    await service.stop();
  });
});
