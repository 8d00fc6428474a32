/**
 * `xenops console VM` and `xenops screenshot VM FILE.png`: the serial console and the display of a
 * VM run by the QEMU backend on this host (API.md §8.4: VM.stat's consoles name the serial
 * console's Unix socket; the tools' QMP monitor is beside it).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { QmpToolError, qmpOnce } from '../client/qmp-tools.js';
import { parsePpm, PpmError, toPng } from '../format/ppm.js';
import { label, resolveVm, type VmEntry } from '../resolve.js';
import { call } from '../wait.js';

/** Ctrl-]: the byte a terminal sends for it, as telnet and virsh use it to detach. */
const DETACH = 0x1d;

/** The VM's serial console socket from VM.stat; a clear failure when it has none here. */
async function serialSocket(ctx: Context, vm: VmEntry, op: string): Promise<string> {
  const [, state] = await call<[unknown, { power_state: string; consoles?: { protocol: string; path: string }[] }]>(ctx, 'VM.stat', { id: vm.id }, { op, vm: label(vm) });
  if (state.power_state === 'Halted' || state.power_state === 'Suspended') {
    throw new CliError(`${label(vm)} is ${state.power_state}: it has no console until it is started`, ExitCode.STATE);
  }
  const path = state.consoles?.find((c) => c.protocol === 'Vt100' && c.path !== '')?.path;
  if (!path) throw new CliError(`${label(vm)} has no serial console socket: consoles are real with xenopsd --backend qemu`, ExitCode.UNIMPLEMENTED);
  return path;
}

export const consoleCmd: Command = {
  name: 'console',
  summary: "attach the terminal to a VM's serial console (Ctrl-] detaches)",
  usage: 'console VM',
  description:
    'Connects to the serial console of a VM run by the QEMU backend on this host. What you type goes to the guest; Ctrl-] detaches (the VM keeps running). QEMU serves one console client at a time; the whole output is also in serial.log beside the socket.',
  examples: ['xenops console web01'],
  args: { min: 1, max: 1 },
  complete: ['vm'],
  async run(ctx, [q]) {
    const vm = await resolveVm(ctx, q!);
    const path = await serialSocket(ctx, vm, 'console');
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new CliError(`cannot connect to the serial console ${path} (${e.code ?? e.message}); it is served on the VM's host only`, ExitCode.CONNECTION)),
      );
    });
    ctx.note(`connected to the serial console of ${label(vm)}; Ctrl-] detaches`);
    const stdin = process.stdin;
    const raw = stdin.isTTY === true;
    if (raw) stdin.setRawMode(true);
    const decoder = new StringDecoder('utf8');
    await new Promise<void>((resolve) => {
      let done = false;
      const detach = (why?: string) => {
        if (done) return;
        done = true;
        stdin.off('data', onInput);
        stdin.off('end', onEnd);
        stdin.pause();
        if (raw) stdin.setRawMode(false);
        socket.end();
        if (why) ctx.note(why);
        resolve();
      };
      const onInput = (chunk: Buffer) => {
        const at = chunk.indexOf(DETACH);
        if (at >= 0) {
          if (at > 0) socket.write(chunk.subarray(0, at));
          detach('detached');
        } else socket.write(chunk);
      };
      // Input from a pipe: detach once it ends and the guest had a moment to answer.
      const onEnd = () => setTimeout(() => detach('detached (end of input)'), 1_000);
      stdin.on('data', onInput);
      stdin.once('end', onEnd);
      stdin.resume();
      socket.on('data', (d: Buffer) => ctx.io.stdout.write(decoder.write(d)));
      socket.once('close', () => detach('the console closed (the domain ended)'));
      socket.on('error', () => undefined);
    });
  },
};

export const screenshot: Command = {
  name: 'screenshot',
  summary: "save a VM's display as a PNG file",
  usage: 'screenshot VM FILE.png',
  description: "Asks the VM's QEMU for its display (QMP screendump, on this host) and writes it as PNG.",
  examples: ['xenops screenshot web01 web01.png'],
  args: { min: 2, max: 2 },
  complete: ['vm', 'file'],
  async run(ctx, [q, file]) {
    if (!file!.toLowerCase().endsWith('.png')) throw usageError(`the screenshot is written as PNG: give a FILE ending in .png, not ${JSON.stringify(file)}`);
    const vm = await resolveVm(ctx, q!);
    const tools = join(dirname(await serialSocket(ctx, vm, 'screenshot')), 'qmp-tools.sock');
    const scratch = await mkdtemp(join(tmpdir(), 'xenops-screenshot-'));
    try {
      const ppm = join(scratch, 'screen.ppm');
      try {
        await qmpOnce(tools, 'screendump', { filename: ppm });
      } catch (e) {
        if (e instanceof QmpToolError) throw new CliError(`cannot take the screenshot: ${e.message}`, e.errorClass ? ExitCode.GENERIC : ExitCode.CONNECTION);
        throw e;
      }
      let image;
      try {
        image = parsePpm(await readFile(ppm));
      } catch (e) {
        if (e instanceof PpmError) throw new CliError(`QEMU's screendump is unreadable: ${e.message}`, ExitCode.GENERIC);
        throw e;
      }
      await writeFile(file!, toPng(image));
      if (ctx.json) ctx.printJson({ file, width: image.width, height: image.height });
      else ctx.out(`${file}: ${image.width}x${image.height} screenshot of ${label(vm)}`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};
