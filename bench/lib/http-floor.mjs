// The floor under any Node.js HTTP JSON-RPC service on this machine: a bare node:http server (in a
// process of its own, like xenopsd) that parses each JSON-RPC body and answers a fixed result,
// driven by the bench's own client with the cycle's concurrency. Whatever xenopsd does per call
// comes on top of this, so `req/s ÷ calls per operation` bounds the cycle from above.
import http from 'node:http';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Rpc } from './rpc.mjs';
import { cpuMeter } from './service.mjs';

const SELF = fileURLToPath(import.meta.url);

function serve() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const call = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const body = JSON.stringify({ result: { id: call.params?.[0]?.id ?? '', state: ['Completed', { duration: 0 }] }, error: null, id: call.id });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
  process.on('disconnect', () => process.exit(0));
}

/** Requests per second and the server's CPU per request, after a warm-up of the same size. */
export async function httpFloor({ requests = 40_000, clients = 64 } = {}) {
  const child = fork(SELF, ['--serve'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const port = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`floor server exited ${code}`)));
    });
    const rpc = new Rpc(`http://127.0.0.1:${port}`, { maxSockets: clients + 8 });
    const run = async () => {
      let next = 0;
      const cpu = cpuMeter(child.pid);
      const client0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next < requests) {
            next++;
            await rpc.call('VM.stat', { id: 'floor' });
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(client0);
      return { requests, clients, requestsPerSecond: requests / seconds, serverCpuMsPerRequest: cpu(requests), clientCpuMsPerRequest: (c.user + c.system) / 1000 / requests };
    };
    await run(); // warm-up: both sides' JIT
    const measured = await run();
    rpc.close();
    return measured;
  } finally {
    child.disconnect?.();
    child.kill();
  }
}

if (process.argv[1] === SELF && process.argv[2] === '--serve') serve();
