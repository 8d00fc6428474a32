/**
 * Damaging a log on purpose, as a disk, a stray tool or a bug might: overwriting a message of a
 * stopped embedded store's file, or publishing bytes that are not an event batch straight onto a
 * NATS event subject (nothing of xenops-ts is involved, so no check of its own can stop it).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { natsNames } from '@xenops/store-nats';
import { httpRequest } from './rpc.js';
import { NATS_URL, REPO_ROOT } from './xenopsd.js';

/** Bytes that are not an EventBatch (protobuf: wire type 4 at offset 1). */
export const GARBAGE = Buffer.from('this is not an event batch');

export interface LoggedMessage {
  readonly seq: number;
  readonly stream: string;
}

/**
 * Overwrites with GARBAGE the message `pick` chooses for each stream it is given, in the
 * `events` table of `<dataDir>/xenops.db`. The service must be stopped (it holds the file locked).
 * Returns the damaged messages.
 */
export function damageEmbeddedLog(dataDir: string, pick: (messages: readonly LoggedMessage[]) => readonly LoggedMessage[]): LoggedMessage[] {
  const db = new Database(path.join(dataDir, 'xenops.db'));
  try {
    const messages = db.prepare('SELECT seq, stream FROM events ORDER BY seq').all() as LoggedMessage[];
    const chosen = [...pick(messages)];
    const overwrite = db.prepare('UPDATE events SET data = ? WHERE seq = ?');
    for (const m of chosen) overwrite.run(GARBAGE, m.seq);
    return chosen;
  } finally {
    db.close();
  }
}

/** Publishes GARBAGE onto the event subject of `stream` under `prefix`; returns the seq JetStream gave it. */
export async function publishGarbage(prefix: string, stream: string): Promise<LoggedMessage> {
  const nc = await connect({ servers: NATS_URL, timeout: 3000 });
  try {
    const ack = await jetstream(nc).publish(natsNames(prefix).eventSubject(stream), GARBAGE);
    return { seq: ack.seq, stream };
  } finally {
    await nc.close();
  }
}

export interface Health {
  readonly httpStatus: number;
  readonly body: {
    status: string;
    seq?: number;
    mode?: string;
    instance_id?: string;
    damaged?: Array<{ seq: number; stream: string; vm?: string; task?: string; host?: string; error: string }>;
    damaged_count?: number;
    quarantined_vms?: string[];
  };
}

export async function healthz(url: string): Promise<Health> {
  const r = await httpRequest({ url }, { method: 'GET', path: '/healthz' });
  return { httpStatus: r.status, body: JSON.parse(r.body) as Health['body'] };
}

export async function metricsText(url: string): Promise<string> {
  return (await httpRequest({ url }, { method: 'GET', path: '/metrics' })).body;
}

/** Runs the built `xenops` CLI against `url`. */
export function xenops(url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = path.join(REPO_ROOT, 'packages/cli/dist/bin/xenops.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '--url', url, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
