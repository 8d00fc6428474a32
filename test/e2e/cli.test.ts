/**
 * The `xenops` command line (issue 6) run as a real binary against real services: embedded, and
 * NATS with the gateway and the agent as two processes; plus the NATS transport and a session
 * under a pseudo-terminal (util-linux `script`) showing the progress bar.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { httpRequest } from '../support/rpc.js';
import { cleanupAll, makeTempDir, NATS_URL, REPO_ROOT, spawnXenopsd, startNatsCluster, uniqueSuffix } from '../support/xenopsd.js';

const XENOPS_BIN = path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const fullEnv: Record<string, string | undefined> = { ...process.env, XENOPS_URL: undefined, XENOPS_SOCKET: undefined, XENOPS_TOKEN_FILE: undefined, ...env };
  for (const k of Object.keys(fullEnv)) if (fullEnv[k] === undefined) delete fullEnv[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [XENOPS_BIN, ...args], { env: fullEnv as NodeJS.ProcessEnv, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function json<T = any>(r: Run): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

function expectOk(r: Run): Run {
  if (r.code !== 0) throw new Error(`expected exit 0, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

afterAll(cleanupAll);

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('xcli');
});

async function xlFile(name: string, body: string): Promise<string> {
  const f = path.join(dir, `${name}-${uniqueSuffix()}.cfg`);
  await writeFile(f, body);
  return f;
}

describe.concurrent.each(['embedded', 'nats'] as const)('xenops against the %s store', (store) => {
  let url: string;
  let socket: string;
  let x: (...args: string[]) => Promise<Run>;

  beforeAll(async () => {
    if (store === 'embedded') {
      const d = await spawnXenopsd({ mode: 'embedded' });
      url = d.url!;
      socket = d.socketPath!;
    } else {
      const c = await startNatsCluster();
      url = c.gateway.url!;
      socket = c.gateway.socketPath!;
    }
    x = (...args) => run(['--url', url, ...args]);
  });

  it('query over --url, --socket, XENOPS_URL and XENOPS_SOCKET', async () => {
    const a = json(expectOk(await x('query', '--json')));
    expect(a).toMatchObject({ name: 'xenops', vendor: 'xenops-ts', features: expect.arrayContaining(['persistent-tasks']) });
    const b = json(expectOk(await run(['--socket', socket, 'query', '--json'])));
    expect(b.instance_id).toBe(a.instance_id);
    expect(json(expectOk(await run(['query', '--json'], { XENOPS_URL: url }))).instance_id).toBe(a.instance_id);
    expect(json(expectOk(await run(['query', '--json'], { XENOPS_SOCKET: socket, XENOPS_URL: 'http://127.0.0.1:1' }))).instance_id).toBe(a.instance_id);
    const text = expectOk(await x('query'));
    expect(text.stdout).toMatch(/^name: +xenops$/m);
    expect(text.stdout).not.toContain('\x1b['); // not a terminal: no colour
  });

  // About 40 CLI processes one after the other: ~25 s on a quiet 2-core machine, more under load.
  it('the whole life of a VM from an xl config file', { timeout: 120_000 }, async () => {
    const name = `web-${uniqueSuffix()}`;
    const cfg = await xlFile(name, `name = "${name}"\ntype = "hvm"\nmemory = 512\nmaxmem = 1024\nvcpus = 2\nmaxvcpus = 4\nboot = "cd"\n`);
    const added = json(expectOk(await x('add', cfg, '--json')));
    expect(added).toMatchObject({ name, replaced: false, vbds: [], vifs: [], pcis: [] });
    const id: string = added.id;
    // Adding again is refused; --replace overwrites.
    const again = await x('add', cfg.replace(/$/, ''), '--json');
    expect(again.code).toBe(0); // a new uuid: no uuid in the file
    const dup = json(again).id as string;
    const ambiguous = await x('stat', name);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain(`the name '${name}' is ambiguous`);
    expect(ambiguous.stderr).toContain(id);
    expectOk(await x('remove', dup));

    const list = json<any[]>(expectOk(await x('list', '--json')));
    expect(list.find((v) => v.id === id)).toMatchObject({ name, power_state: 'Halted', vcpus: 2, memory_dynamic_max: 512 * 1024 * 1024, builder: 'HVM' });
    const table = expectOk(await x('list')).stdout.split('\n');
    expect(table[0]).toMatch(/^UUID +NAME +STATE +HOST +DOMID +TYPE +VCPUS +MEMORY$/);
    // A Halted VM belongs to no host (API.md §9.7).
    expect(table.find((l) => l.startsWith(id))).toMatch(new RegExp(`^${id} +${name} +Halted +- +- +HVM +2 +512M$`));

    const stat = json(expectOk(await x('stat', id.slice(0, 8), '--json')));
    expect(stat.config).toMatchObject({ id, name, vcpu_max: 4, memory_static_max: 1024 * 1024 * 1024 });
    expect(stat.state.power_state).toBe('Halted');

    const started = json(expectOk(await x('start', name, '--json')));
    expect(started).toMatchObject({ vm: id, name, power_state: 'Running' });
    expect(started.tasks).toHaveLength(2);
    expect(started.elapsed).toBeGreaterThan(0);

    const startAgain = await x('start', name);
    expect(startAgain.code).toBe(4);
    expect(startAgain.stderr).toBe(`xenops start: VM ${name} is Running; it is already started; use 'xenops reboot ${name}' to restart it\n`);
    const rm = await x('remove', name);
    expect(rm.code).toBe(4);
    expect(rm.stderr).toBe(`xenops remove: VM ${name} is Running; shut it down first, or use --force\n`);
    const rmJson = await x('remove', name, '--json');
    expect(json(rmJson).error).toMatchObject({ exit_code: 4, server_error: ['Bad_power_state', ['Running', 'Halted']] });

    expect(json(expectOk(await x('pause', name, '--json'))).power_state).toBe('Paused');
    expect(json(expectOk(await x('unpause', name, '--json'))).power_state).toBe('Running');
    const human = expectOk(await x('shutdown', name));
    expect(human.stdout).toMatch(new RegExp(`^Shut down ${name}: Halted \\(\\d+(\\.\\d+)? (ms|s)\\)\\n$`));
    expect(human.stderr).toBe(''); // not a terminal: no bar; a quick task prints no progress lines

    expect(json(expectOk(await x('start', name, '--paused', '--json'))).power_state).toBe('Paused');
    expect(json(expectOk(await x('shutdown', name, '--force', '--json'))).power_state).toBe('Halted');

    // --no-wait: the task id at once; the task is left for the caller.
    const nw = expectOk(await x('start', name, '--no-wait'));
    const taskId = nw.stdout.trim();
    expect(taskId).toMatch(/^[1-9][0-9]*$/);
    const tasks = json<any[]>(expectOk(await x('tasks', '--json')));
    expect(tasks.map((t) => t.id)).toContain(taskId);
    expect(tasks.find((t) => t.id === taskId).dbg).toBe('xenops-cli');
    expect(expectOk(await x('tasks')).stdout).toMatch(new RegExp(`^ *${taskId} +(Pending|Completed)`, 'm'));
    expect(json(expectOk(await x('task-cancel', taskId, '--json')))).toEqual({ task: taskId, cancel_requested: true });
    const nwj = json(expectOk(await x('shutdown', name, '--force', '--no-wait', '--json')));
    expect(nwj.task).toMatch(/^[1-9][0-9]*$/);

    // remove --force powers off first.
    for (let i = 0; i < 50 && json(await x('stat', id, '--json')).state.power_state !== 'Halted'; i++) await new Promise((r) => setTimeout(r, 50));
    expectOk(await x('start', id));
    const forced = json(expectOk(await x('remove', id, '--force', '--json')));
    expect(forced).toEqual({ id, name, removed: true });
    const gone = await x('stat', id);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toBe(`xenops stat: no VM is called '${id}' (by uuid, uuid prefix or name); 'xenops list' shows the VMs\n`);
  });

  it('create (add + start) from JSON and YAML documents; --dry-run sends nothing', async () => {
    const id = randomUUID();
    const doc = { id, name: `doc-${uniqueSuffix()}`, ty: ['PV', { boot: ['Direct', { kernel: '/boot/vmlinuz' }] }], memory_static_max: 268435456, memory_dynamic_max: 268435456, memory_dynamic_min: 268435456, vcpus: 1 };
    const jf = path.join(dir, `${id}.json`);
    await writeFile(jf, JSON.stringify(doc));
    const dry = json(expectOk(await x('add', jf, '--dry-run')));
    expect(dry.vm).toMatchObject({ id, ssidref: 0, on_reboot: ['Start'] });
    expect((await x('stat', id)).code).toBe(3);
    const created = json(expectOk(await x('create', jf, '--json')));
    expect(created).toMatchObject({ vm: id, power_state: 'Running', replaced: false });
    const exists = await x('add', jf);
    expect(exists.code).toBe(4);
    expect(exists.stderr).toContain(`a VM with uuid ${id} already exists`);
    expect(exists.stderr).toContain('use --replace');
    const yf = path.join(dir, `${id}.yaml`);
    await writeFile(yf, `vm:\n  id: ${id}\n  name: renamed\n  ty: [PV, {boot: [Direct, {kernel: /boot/vmlinuz}]}]\n  memory_static_max: 268435456\n  memory_dynamic_max: 268435456\n  memory_dynamic_min: 268435456\n  vcpus: 1\n`);
    expect(json(expectOk(await x('add', yf, '--replace', '--json')))).toMatchObject({ id, name: 'renamed', replaced: true });
    expect(json(expectOk(await x('stat', 'renamed', '--json'))).state.power_state).toBe('Running');
    expectOk(await x('remove', 'renamed', '--force'));
  }, 60_000);

  it('a config with devices: added with VBD/VIF/PCI.add, or rolled back cleanly', async () => {
    const name = `dev-${uniqueSuffix()}`;
    const cfg = await xlFile(name, `name = "${name}"\nmemory = 256\ndisk = [ 'phy:/dev/vg/${name},xvda,w', ',hdc:cdrom,r' ]\nvif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]\n`);
    const r = await x('add', cfg, '--json');
    if (expectOk(r)) {
      expect(json(r)).toMatchObject({ vbds: ['xvda', 'hdc'], vifs: ['0'] });
      const disks = json<any[]>(expectOk(await x('disk', 'list', name, '--json')));
      expect(disks.map((d) => d.device)).toEqual(['hdc', 'xvda']);
      expectOk(await x('remove', name));
    } else {
      expect(r.stderr).toContain(`cannot add disk xvda of VM ${name}`);
      expect(r.stderr).toContain('the VM was not added');
      expect(json<any[]>(await x('list', '--json')).find((v) => v.name === name)).toBeUndefined();
    }
  });

  it('reboot, vcpus, memory, export/import, diagnostics, disk/nic, events, suspend/resume all work', async () => {
    const name = `op-${uniqueSuffix()}`;
    const cfg = await xlFile(name, `name = "${name}"\nmemory = 256\nmaxmem = 512\nvcpus = 1\nmaxvcpus = 2\n`);
    expectOk(await x('create', cfg));
    expectOk(await x('reboot', name, '--force'));
    expectOk(await x('vcpus', name, '2'));
    expect(json(expectOk(await x('stat', name, '--json'))).state.vcpu_target).toBe(2);
    expectOk(await x('memory', name, '256', '512M'));
    expect(json(expectOk(await x('stat', name, '--json'))).state.memory_target).toBe(512 * 1024 * 1024);
    const exported = expectOk(await x('export', name));
    expect(JSON.parse(exported.stdout).vm.name).toBe(name);
    const f = path.join(dir, `${name}.json`);
    await writeFile(f, exported.stdout);
    expectOk(await x('import', f));
    expect(JSON.parse(expectOk(await x('diagnostics', '--json')).stdout)).toBeTruthy();
    expectOk(await x('disk', 'add', name, 'phy:/dev/vg/x,xvdb,w'));
    expect(json<unknown[]>(expectOk(await x('disk', 'list', name, '--json')))).toHaveLength(1);
    expectOk(await x('nic', 'add', name, 'bridge=xenbr0'));
    expect(json<unknown[]>(expectOk(await x('nic', 'list', name, '--json')))).toHaveLength(1);
    expect(expectOk(await x('events', '--since', '0', '--count', '1', '--timeout', '2')).stdout).not.toBe('');
    const img = path.join(dir, `${name}.img`);
    expectOk(await x('suspend', name, '--image', img));
    expect(json(expectOk(await x('stat', name, '--json'))).state.power_state).toBe('Suspended');
    expectOk(await x('resume', name, '--image', img));
    expect(json(expectOk(await x('stat', name, '--json'))).state.power_state).toBe('Running');
    expectOk(await x('remove', name, '--force'));
  }, 60_000);

  it('log --follow prints new events as they are logged, in plain words', async ({ expect }) => {
    const reply = await httpRequest({ url }, { body: JSON.stringify({ method: 'UPDATES.last_id', id: 1, params: [{}] }) });
    const head = (JSON.parse(reply.body) as { result: number }).result;
    const child = spawn(process.execPath, [XENOPS_BIN, '--url', url, 'log', '--follow', '--since', String(head)], {
      env: { ...process.env, XENOPS_URL: undefined } as NodeJS.ProcessEnv,
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      const name = `follow-${uniqueSuffix()}`;
      expectOk(await x('add', await xlFile(name, `name = "${name}"\nmemory = 256\nvcpus = 1\n`)));
      await expect.poll(() => out, { timeout: 10_000 }).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d seq \\d+ ${name}: VM \\S+ configuration registered \\(name "${name}"\\)`, 'm'));
    } finally {
      child.kill('SIGINT');
    }
  }, 30_000);

  it('usage errors, unknown names, missing files, log and verify', async () => {
    const bad = await x('frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
    const typo = await x('shutdwn', 'x');
    expect(typo.stderr).toContain("did you mean 'shutdown'?");
    const flag = await x('start', 'x', '--bogus');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("Unknown option '--bogus'");
    expect((await x('start')).stderr).toContain('missing argument; usage: xenops start VM');
    const vcpus = await x('vcpus', 'x', 'many');
    expect(vcpus.code).toBe(2);
    const nf = await x('shutdown', 'no-such-vm', '--json');
    expect(nf.code).toBe(3);
    expect(json(nf).error.exit_code).toBe(3);
    const missing = await x('add', path.join(dir, 'nope.cfg'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');
    const malformed = await xlFile('bad', 'name = "bad"\nmemory = 256\nvcpus = two\n');
    const m = await x('add', malformed);
    expect(m.code).toBe(2);
    expect(m.stderr).toBe(`xenops add: ${malformed}:3: "two" is not a value; put text in quotes: "two"\n`);
    const tc = await x('task-cancel', '999999999');
    expect(tc.code).toBe(3);
    expect(tc.stderr).toContain("task 999999999 does not exist; 'xenops tasks' lists the tasks");
    // The audit history: every event in plain words, and as JSON lines.
    expectOk(await x('add', await xlFile('audited', 'name = "audited"\nmemory = 256\nvcpus = 1\n')));
    const history = await x('log');
    expect(history.code).toBe(0);
    // Entries of a VM name it (issue 12).
    expect(history.stdout).toMatch(/^\d\d:\d\d:\d\d seq \d+ audited: VM \S+ configuration registered \(name "audited"\)/m);
    const logJson = await x('log', '--json', '--until', '5');
    expect(logJson.code).toBe(0);
    const entries = logJson.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; event: string; dbg: string });
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.seq <= 5 && typeof e.event === 'string')).toBe(true);
    expect((await x('log', '--since', 'yesterday-ish')).code).toBe(2);
    const verified = await x('verify');
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^ok: the read model is exactly the replay of the log, and no VM ever had two domains or two hosts$/m);
  }, 60_000);
});

describe.concurrent('xenops without a service, and its help', () => {
  it('connection failures say how to start the service (exit 5)', async () => {
    const r = await run(['--url', 'http://127.0.0.1:1', 'list']);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe(
      "xenops list: cannot connect to xenopsd at http://127.0.0.1:1: connection refused; is xenopsd running? Start it with 'npm start' in the xenops-ts checkout, or run 'xenopsd'\n",
    );
    const s = await run(['--socket', path.join(dir, 'none.sock'), 'list', '--json']);
    expect(s.code).toBe(5);
    expect(json(s).error.message).toContain('the socket does not exist');
    const both = await run(['--url', 'http://x', '--socket', '/x', 'list']);
    expect(both.code).toBe(2);
  });

  it('--help everywhere, with examples and the exit codes', async () => {
    const g = expectOk(await run(['--help']));
    expect(g.stdout).toContain('Exit codes:');
    expect(g.stdout).toMatch(/^ +4 +wrong state/m);
    expect(g.stdout).toContain('npm start');
    const cmds = ['list', 'add', 'start', 'shutdown', 'disk', 'nic', 'events', 'completion', 'log'];
    for (const h of await Promise.all(cmds.map((c) => run([c, '--help'])))) {
      expectOk(h);
      expect(h.stdout).toMatch(/^Usage: xenops /);
      expect(h.stdout).toContain('Examples:');
    }
    expect(expectOk(await run(['--version'])).stdout).toMatch(/^xenops \d+\.\d+\.\d+\n$/);
  });

  it('completion scripts for bash and zsh', async () => {
    const b = expectOk(await run(['completion', 'bash']));
    expect(b.stdout).toContain('complete -F _xenops xenops');
    const f = path.join(dir, 'c.bash');
    await writeFile(f, b.stdout);
    const syntax = await new Promise<number>((resolve) => execFile('bash', ['-n', f], (err) => resolve(err ? 1 : 0)));
    expect(syntax).toBe(0);
    expect(expectOk(await run(['completion', 'zsh'])).stdout).toContain('#compdef xenops');
    expect((await run(['completion', 'fish'])).code).toBe(2);
  });
});

describe.concurrent('xenops over NATS request/reply', () => {
  it('reports no responders clearly (exit 5)', async () => {
    const r = await run(['--nats', NATS_URL, '--nats-subject', `xenops.cli.test.${uniqueSuffix()}`, 'query']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('no xenopsd gateway answers on NATS subject');
    const down = await run(['--nats', 'nats://127.0.0.1:1', 'query']);
    expect(down.code).toBe(5);
    expect(down.stderr).toContain('cannot connect to the NATS server at nats://127.0.0.1:1');
  });

  it('carries JSON-RPC bodies to a gateway and back', async () => {
    // A responder on a private subject that hands each body to a real gateway over HTTP (the
    // gateway's own subject, §2.7, is shared by every test cluster on this NATS server).
    const d = await spawnXenopsd({ mode: 'embedded' });
    const subject = `xenops.cli.test.${uniqueSuffix()}`;
    const nc = await connect({ servers: NATS_URL });
    try {
      const sub = nc.subscribe(subject);
      void (async () => {
        for await (const m of sub) {
          const reply = await httpRequest({ url: d.url! }, { body: m.string(), headers: { 'Content-Type': 'application/json' } });
          m.respond(reply.body);
        }
      })();
      await nc.flush();
      const q = json(expectOk(await run(['--nats', NATS_URL, '--nats-subject', subject, 'query', '--json'])));
      expect(q.name).toBe('xenops');
      const name = `nats-${uniqueSuffix()}`;
      const cfg = await xlFile(name, `name = "${name}"\nmemory = 128\n`);
      const nx = (...a: string[]) => run(['--nats', NATS_URL, '--nats-subject', subject, ...a]);
      expectOk(await nx('create', cfg));
      expect(json<any[]>(expectOk(await nx('list', '--json'))).find((v) => v.name === name).power_state).toBe('Running');
    } finally {
      await nc.close();
    }
  });
});

describe('a terminal session', () => {
  it('shows the progress bar, colour and the elapsed time under a pseudo-terminal', async () => {
    const d = await spawnXenopsd({ mode: 'embedded' });
    const name = `tty-${uniqueSuffix()}`;
    const cfg = await xlFile(name, `name = "${name}"\nmemory = 128\n`);
    expectOk(await run(['--url', d.url!, 'add', cfg]));
    const cmd = `${process.execPath} ${XENOPS_BIN} --url ${d.url} start ${name} && ${process.execPath} ${XENOPS_BIN} --url ${d.url} list`;
    const env = { ...process.env, TERM: 'xterm' } as NodeJS.ProcessEnv;
    delete env.NO_COLOR;
    const out = await new Promise<string>((resolve, reject) =>
      execFile('script', ['-qfec', cmd, '/dev/null'], { env, timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(out).toMatch(/start tty-\S+ \(task \d+\) \[#+\] 100%/);
    expect(out).toMatch(/\[-{24}\]   0%/);
    expect(out).toContain('\r\x1b[K'); // redrawn in place
    expect(out).toMatch(new RegExp(`Started ${name}: \\x1b\\[32mRunning\\x1b\\[39m \\(\\d+(\\.\\d+)? (ms|s)\\)`));
    expect(out).toMatch(/\x1b\[32mRunning\x1b\[39m/); // the list is coloured too
  });
});
