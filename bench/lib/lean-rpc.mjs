// A lean JSON-RPC v1 client for latency probes: one keep-alive TCP connection, one call at a
// time, HTTP/1.1 written by hand and the reply framed by its Content-Length (the gateway always
// sends one). Node's http client allocates a request and a response object per call and its
// own GC pauses show up in a sub-millisecond p99; this client keeps the probe about the server.
import net from 'node:net';
import { resultOf } from './rpc.mjs';

const HEADER_END = Buffer.from('\r\n\r\n');

export class LeanRpc {
  constructor(baseUrl) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.nextId = 1;
    this.socket = undefined;
    this.pending = undefined;
    this.buffer = Buffer.alloc(0);
  }

  async #connect() {
    const socket = net.connect(this.port, this.host);
    socket.setNoDelay(true);
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('data', (chunk) => this.#onData(chunk));
    const fail = (e) => {
      this.socket = undefined;
      const p = this.pending;
      this.pending = undefined;
      p?.reject(e ?? new Error('connection closed'));
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
    this.socket = socket;
  }

  #onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0 || !this.pending) return;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) {
      this.socket.destroy(new Error(`reply without Content-Length: ${head.split('\r\n')[0]}`));
      return;
    }
    const total = end + 4 + Number(length[1]);
    if (this.buffer.length < total) return;
    const body = this.buffer.subarray(end + 4, total).toString('utf8');
    this.buffer = this.buffer.subarray(total);
    const p = this.pending;
    this.pending = undefined;
    p.resolve({ status, body });
  }

  async call(method, args = {}) {
    if (this.pending) throw new Error('LeanRpc: one call at a time');
    if (!this.socket) await this.#connect();
    const body = JSON.stringify({ method, id: this.nextId++, params: [{ debug_info: 'bench', ...args }] });
    const res = await new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(
        `POST / HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    return resultOf(method, res);
  }

  close() {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
