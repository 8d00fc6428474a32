/**
 * One QMP conversation on a domain's tools monitor (`qmp-tools.sock`, API.md §8.4, QEMU backend):
 * the greeting, `qmp_capabilities`, then one command and its reply. The agent keeps its own QMP
 * connection; this second monitor is for tools on the VM's host such as `xenops screenshot`.
 */
import net from 'node:net';

export class QmpToolError extends Error {
  override readonly name = 'QmpToolError';
  constructor(
    message: string,
    /** QEMU's error class when QEMU answered with an error. */
    readonly errorClass?: string,
  ) {
    super(message);
  }
}

/** Runs `command` with `args` on the QMP socket at `path`; resolves with its `return` value. */
export function qmpOnce(path: string, command: string, args: Record<string, unknown>, timeoutMs = 15_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let buffer = '';
    let stage: 'greeting' | 'capabilities' | 'command' = 'greeting';
    const finish = (err: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new QmpToolError(`QEMU did not answer ${command} within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', (e: NodeJS.ErrnoException) => finish(new QmpToolError(`cannot connect to ${path}: ${e.code ?? e.message}`)));
    socket.on('close', () => finish(new QmpToolError(`QEMU closed ${path} before answering ${command}`)));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          finish(new QmpToolError(`QEMU sent a line that is not JSON on ${path}`));
          return;
        }
        if ('event' in message) continue;
        if (stage === 'greeting') {
          if (!('QMP' in message)) return finish(new QmpToolError(`${path} is not a QMP monitor`));
          stage = 'capabilities';
          socket.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if ('error' in message) {
          const e = message.error as { class?: string; desc?: string };
          return finish(new QmpToolError(e.desc ?? 'QEMU refused the command', e.class));
        } else if (stage === 'capabilities') {
          stage = 'command';
          socket.write(`${JSON.stringify({ execute: command, arguments: args })}\n`);
        } else {
          return finish(undefined, message.return);
        }
      }
    });
  });
}
