/** xenopsd's one-shot actions: `--nats-setup`, `--nats-permissions ROLE` and `--restore FILE`. */
import { setupNatsResources } from '@xenops/store-nats';
import type { DaemonConfig } from './config.js';
import { natsPermissionsText } from './nats-permissions.js';
import { runRestore } from './restore.js';

/** Runs `config.oneShot`, writing its result to `out`; throws what stopped it. */
export async function runOneShot(
  config: DaemonConfig & { oneShot: NonNullable<DaemonConfig['oneShot']> },
  out: (text: string) => void,
  log: (line: string) => void,
): Promise<void> {
  const { oneShot } = config;
  if (oneShot.action === 'restore') return runRestore(oneShot, out, log);
  if (oneShot.action === 'nats-setup') {
    // parseDaemonArgs refuses --nats-setup without --nats
    const lines = await setupNatsResources({ ...config.nats!, name: `xenopsd setup ${config.hostId}` });
    out(lines.map((l) => `${l}\n`).join(''));
    return;
  }
  const rpcSubject = config.queue ?? process.env.XENOPS_QUEUE;
  out(
    natsPermissionsText({
      role: oneShot.role,
      prefix: oneShot.prefix,
      hostId: config.hostId,
      ...(rpcSubject ? { rpcSubject } : {}),
      retention: config.retentionDays !== undefined,
    }),
  );
}
