// A minimal JSON-RPC v1 client over node:http with one keep-alive Agent (no dependencies).
import http from 'node:http';

export class RpcError extends Error {
  constructor(method, error) {
    super(`${method}: ${JSON.stringify(error)}`);
    this.name = 'RpcError';
    this.error = error;
  }
}

/** The result of a JSON-RPC v1 reply `{status, body}`, or a thrown RpcError. */
export function resultOf(method, res) {
  let reply;
  try {
    reply = JSON.parse(res.body);
  } catch {
    throw new Error(`${method}: HTTP ${res.status}: unparseable reply ${res.body.slice(0, 200)}`);
  }
  if (reply.error !== null && reply.error !== undefined) throw new RpcError(method, reply.error);
  return reply.result;
}

export class Rpc {
  constructor(baseUrl, { maxSockets = 256 } = {}) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.nextId = 1;
    this.calls = 0;
  }

  /** GET a path; resolves with {status, body}. */
  get(path, timeoutMs = 600_000) {
    return this.#request('GET', path, undefined, timeoutMs);
  }

  async call(method, args = {}, timeoutMs = 120_000) {
    const body = JSON.stringify({ method, id: this.nextId++, params: [{ debug_info: 'bench', ...args }] });
    this.calls++;
    const res = await this.#request('POST', '/', body, timeoutMs);
    return resultOf(method, res);
  }

  async #request(method, path, body, timeoutMs) {
    try {
      return await this.#once(method, path, body, timeoutMs);
    } catch (e) {
      // A keep-alive socket the server closed while idle: nothing was processed, send again once.
      if (e.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) return this.#once(method, path, body, timeoutMs);
      throw e;
    }
  }

  #once(method, path, body, timeoutMs) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)));
      req.on('error', (e) => {
        e.reusedSocket = req.reusedSocket;
        reject(e);
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  close() {
    this.agent.destroy();
  }
}

/**
 * Waits for tasks the way xapi does: ONE UPDATES.get loop per client process (blocking, so no
 * busy polling), and a Task.stat for each watched task the update set names. A task is checked
 * once when the waiter registers (it may have finished already) and again at every signal.
 */
export class TaskWatcher {
  constructor(rpc) {
    this.rpc = rpc;
    this.waiters = new Map(); // taskId -> {resolve, reject, inflight, dirty}
    this.stopped = false;
    this.wakeups = 0;
    this.stats = 0;
  }

  async start() {
    this.lastId = await this.rpc.call('UPDATES.last_id');
    this.loop = this.#loop();
  }

  async #loop() {
    while (!this.stopped) {
      let res;
      try {
        res = await this.rpc.call('UPDATES.get', { last_id: this.lastId, timeout: 2 }, 30_000);
      } catch (e) {
        if (this.stopped) return;
        process.stderr.write(`  watcher: ${e.message}\n`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.wakeups++;
      const [, ids, next] = res;
      this.lastId = next;
      for (const id of ids) {
        if (id[0] === 'Task' && this.waiters.has(id[1])) this.#check(id[1]);
      }
    }
  }

  wait(taskId) {
    return new Promise((resolve, reject) => {
      this.waiters.set(taskId, { resolve, reject, inflight: false, dirty: false });
      this.#check(taskId);
    });
  }

  async #check(taskId) {
    const w = this.waiters.get(taskId);
    if (!w) return;
    if (w.inflight) {
      w.dirty = true;
      return;
    }
    w.inflight = true;
    try {
      do {
        w.dirty = false;
        this.stats++;
        const t = await this.rpc.call('Task.stat', { id: taskId });
        const state = t.state[0];
        if (state === 'Completed') {
          this.waiters.delete(taskId);
          return w.resolve(t);
        }
        if (state === 'Failed') {
          this.waiters.delete(taskId);
          return w.reject(new Error(`task ${taskId} failed: ${JSON.stringify(t.state[1])}`));
        }
      } while (w.dirty);
    } catch (e) {
      this.waiters.delete(taskId);
      w.reject(e);
    } finally {
      w.inflight = false;
    }
  }

  async stop() {
    this.stopped = true;
    await this.loop?.catch(() => {});
  }
}
