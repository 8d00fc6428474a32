/** What every command gets: the connection, the output streams and the global flags. */
import { RpcClient } from './client/rpc.js';
import { chooseTransport, type ConnectOptions } from './client/connect.js';
import { colourEnabled, paintWith, type Paint } from './format/colour.js';
import type { ProgressSink } from './format/progress.js';

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: ProgressSink;
  env: NodeJS.ProcessEnv;
}

export class Context {
  private client: RpcClient | undefined;
  readonly paint: Paint;
  /** Paint for stderr (error lines). */
  readonly paintErr: Paint;
  /** Ctrl-C handlers of the running wait (first press cancels the task, second exits). */
  interrupt: (() => void) | undefined;

  constructor(
    readonly io: Io,
    readonly command: string,
    readonly connect: ConnectOptions,
    readonly json: boolean,
    readonly noWait: boolean,
    noColour: boolean,
  ) {
    this.paint = paintWith(!noColour && !json && colourEnabled(io.stdout, io.env));
    this.paintErr = paintWith(!noColour && colourEnabled(io.stderr, io.env));
  }

  get env(): NodeJS.ProcessEnv {
    return this.io.env;
  }

  rpc(): RpcClient {
    this.client ??= new RpcClient(chooseTransport(this.connect, this.io.env));
    return this.client;
  }

  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  }

  /** A note on stderr (not part of the command's output). */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.io.stderr.write(`${this.paintErr('yellow', 'warning')}: ${text}\n`);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}
