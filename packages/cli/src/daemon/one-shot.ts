/** xenopsd's one-shot actions: `--nats-setup` and `--nats-permissions ROLE`. */
import { setupNatsResources } from '@xenops/core';
import type { DaemonConfig } from './config.js';
import { formatNatsPermissions, natsRolePermissions } from './nats-permissions.js';

/** Runs `config.oneShot`, writing its result to `out`; throws what stopped it. */
export async function runOneShot(config: DaemonConfig & { oneShot: NonNullable<DaemonConfig['oneShot']> }, out: (text: string) => void): Promise<void> {
  const { oneShot } = config;
  if (oneShot.action === 'nats-setup') {
    // parseDaemonArgs refuses --nats-setup without --nats
    const lines = await setupNatsResources({ ...config.nats!, name: `xenopsd setup ${config.hostId}` });
    out(lines.map((l) => `${l}\n`).join(''));
    return;
  }
  const { prefix } = oneShot;
  const rpcSubject = config.queue ?? process.env.XENOPS_QUEUE;
  const options = {
    role: oneShot.role,
    prefix,
    hostId: config.hostId,
    ...(rpcSubject ? { rpcSubject } : {}),
    retention: config.retentionDays !== undefined,
  };
  const comment = `xenopsd --role ${oneShot.role} --nats-prefix ${prefix} --host-id ${config.hostId}${rpcSubject ? ` --queue ${rpcSubject}` : ''}${options.retention ? ' --retention-days ...' : ''}`;
  out(formatNatsPermissions(natsRolePermissions(options), comment));
}
