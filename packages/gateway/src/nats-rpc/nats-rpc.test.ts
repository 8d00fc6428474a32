import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dispatcher } from '../rpc/handler.js';
import { REPLY_TOO_LARGE_PREFIX, startNatsRpc } from './nats-rpc.js';

const NATS_URL = process.env.XENOPS_TEST_NATS ?? 'nats://127.0.0.1:4222';
let nc: NatsConnection;

beforeAll(async () => {
  // The gateway loads nats.js only when it serves NATS (its architecture test): so does this test.
  const { connect } = await import('@nats-io/transport-node');
  nc = await connect({ servers: NATS_URL });
});
afterAll(async () => {
  await nc?.close();
});

describe('the NATS JSON-RPC subject (§2.7)', () => {
  it("answers a reply too big for one NATS message with an error naming the server's max_payload", async () => {
    const subject = `test.nats-rpc.${randomBytes(4).toString('hex')}`;
    const big = 'x'.repeat(2 * 1024 * 1024);
    const dispatch: Dispatcher = async (req) => ({ ok: true, value: req.method === 'big' ? big : 'small' });
    const rpc = startNatsRpc(nc, dispatch, { subject });
    await nc.flush();
    try {
      const failed = (await nc.request(subject, JSON.stringify({ method: 'big', params: [], id: 1 }), { timeout: 5_000 })).json<{ error: [string, string] }>();
      expect(failed.error[0]).toBe('Internal_error');
      expect(failed.error[1]).toMatch(new RegExp(`^${REPLY_TOO_LARGE_PREFIX} ${nc.info!.max_payload} bytes \\(the NATS server's max_payload\\): it was \\d+ bytes`));
      // Small replies are untouched.
      expect((await nc.request(subject, JSON.stringify({ method: 'small', params: [], id: 2 }), { timeout: 5_000 })).json()).toMatchObject({ result: 'small', error: null });
    } finally {
      await rpc.close();
    }
  });
});
