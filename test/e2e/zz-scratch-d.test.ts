import { afterAll, it } from 'vitest';
import { checkAfterFault, runDriver } from '../support/crash-driver.js';
import { startClusterOn, startOwnNatsServer } from '../support/own-nats.js';
import { cleanupAll } from '../support/xenopsd.js';
let srv: any;
afterAll(async () => { await srv?.stop('SIGKILL'); await cleanupAll(); });
it('d', async () => {
  srv = await startOwnNatsServer();
  const cluster = await startClusterOn(srv.url);
  const { ledger, faultDone } = await runDriver({ url: () => cluster.gateway.url, seed: 5, faultAt: 200, fault: { async run() {
    process.stderr.write('FAULT stop\n'); await srv.stop('SIGTERM'); await new Promise(r => setTimeout(r, 1000)); await srv.start(); process.stderr.write('FAULT started\n');
  } } });
  await faultDone;
  console.log('driver done', ledger.acknowledged, ledger.inFlight);
  const r = await checkAfterFault(() => cluster.gateway.url, ledger);
  console.log(JSON.stringify({ lost: r.lost, stuck: r.stuck, v: r.verify, c: r.compared }).slice(0, 3000));
  process.stderr.write(cluster.gateway.stderr.slice(-3000) + '\n---agent\n' + cluster.agent.stderr.slice(-3000));
}, 120_000);
