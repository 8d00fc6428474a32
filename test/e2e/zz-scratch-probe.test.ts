import { afterAll, it } from 'vitest';
import { rpc } from '../support/crash-driver.js';
import { startClusterOn, startOwnNatsServer } from '../support/own-nats.js';
import { cleanupAll } from '../support/xenopsd.js';
import { xenopsdVm, vmId } from '../support/vms.js';
let srv: any;
afterAll(async () => { await srv?.stop('SIGKILL'); await cleanupAll(); });
it('probe', async () => {
  srv = await startOwnNatsServer();
  const cluster = await startClusterOn(srv.url);
  const url = () => cluster.gateway.url;
  const vms = Array.from({ length: 32 }, () => vmId('p'));
  for (const id of vms) await rpc(url(), 'VM.add', { vm: xenopsdVm(id) });
  const t0 = Date.now();
  const log = (s: string) => process.stderr.write(`+${((Date.now()-t0)/1000).toFixed(2)} ${s}\n`);
  let stop = false;
  const loops = Array.from({ length: 16 }, async (_, c) => {
    let i = 0;
    while (!stop) {
      const id = vms[(c * 2 + (i++ % 2))]!;
      const m = ['VM.add', 'VM.start', 'VM.pause', 'VM.unpause', 'VM.shutdown'][i % 5]!;
      const s = Date.now();
      const o = await rpc(url(), m, m === 'VM.add' ? { vm: xenopsdVm(id) } : { id }, 120_000);
      const d = Date.now() - s;
      if (d > 1500 || o.kind !== 'ok') log(`c${c} ${m} ${id.slice(0,8)} -> ${o.kind} ${o.kind==='ok'?'':JSON.stringify((o as any).error ?? (o as any).message).slice(0,150)} after ${d}ms (sent at +${((s-t0)/1000).toFixed(2)})`);
      if (o.kind !== 'ok') await new Promise(r => setTimeout(r, 200));
    }
  });
  await new Promise(r => setTimeout(r, 1500));
  log('stop'); await srv.stop(process.env.SIG ?? 'SIGTERM'); await new Promise(r => setTimeout(r, 1000)); await srv.start(); log('started');
  await new Promise(r => setTimeout(r, 60000));
  stop = true; await Promise.all(loops);
  log('done');
  process.stderr.write(cluster.gateway.stderr.slice(-3000) + '\n---agent\n' + cluster.agent.stderr.slice(-3000));
}, 300_000);
