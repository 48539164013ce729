/**
 * Order fulfilment with TLS and authentication on: a tenant's caller drives its
 * orders, the pm-worker authenticates with its own token (scope `*`: it acts
 * on every tenant's orders) and ships the paid ones and cancels the unpaid
 * ones; the events it causes keep the order's tenant and name the worker as
 * their principal. Without a token (and without insecure mode chosen) the
 * worker refuses to start.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { createClient } from '../../src/client/index.js';
import { startCluster, tlsEnv, type Cluster } from '../support/cluster.js';
import { startProcess, type ServiceProcess } from '../support/processes.js';
import { expectRejection } from '../support/expect-error.js';

const WORKER_TOKEN = 'pm-worker-token-for-tests';
const ALICE_TOKEN = 'alice-token-for-tests';
const RUN = `s${Date.now().toString(36)}`;
let cluster: Cluster;
let worker: ServiceProcess;
/** The worker reaches the router over TLS (a client certificate of the cluster's CA). */
const workerTls = () => tlsEnv(cluster.tls!.files.rebalancer!);

beforeAll(async () => {
  cluster = await startCluster({
    shards: 2,
    tls: true,
    auth: {
      AUTH_TOKENS: [tokenEntry(WORKER_TOKEN, 'pm-worker', 'ops', ['*']), tokenEntry(ALICE_TOKEN, 'alice', 'tenant-a', ['order-header', 'order-lines', 'order-payment'])].join(','),
    },
  });
  worker = await startProcess(
    'pm-worker/main.ts',
    {
      ...workerTls(),
      PM_SOURCE: cluster.routerAddress,
      RING_DATABASE_URL: cluster.ringUrl,
      PM_TOKEN: WORKER_TOKEN,
      SHARDWRITE_INSECURE: 'false',
      PM_PAYMENT_TIMEOUT_MS: '3000',
      PM_TIMEOUT_SCAN_MS: '200',
    },
    /pm-worker listening on (\S+)/,
  );
}, 120_000);

afterAll(async () => {
  await worker?.stop(5000);
  await cluster?.close();
});

it('refuses to start without a token unless insecure mode is chosen', async () => {
  const p = startProcess('pm-worker/main.ts', { ...workerTls(), PM_SOURCE: cluster.routerAddress, RING_DATABASE_URL: cluster.ringUrl, SHARDWRITE_INSECURE: 'false' }, /pm-worker listening on (\S+)/);
  await expectRejection(p, /exited with 2[\s\S]*PM_TOKEN is required/);
});

it("ships a tenant's paid orders and cancels its unpaid ones, the worker acting with its own token", async () => {
  const client = createClient(cluster.routerAddress, { metadata: { authorization: `Bearer ${ALICE_TOKEN}` }, tls: { caFile: cluster.tls!.caFile } });
  const address = { name: 'N', line1: 'L', city: 'C', postalCode: '1', country: 'DE' };
  const ids = Array.from({ length: 6 }, (_, i) => `${RUN}-${i}`);
  try {
    for (const [i, id] of ids.entries()) {
      await client.placeOrder({ orderId: id, commandId: `${id}-p`, customerId: 'c', customerEmail: 'c@example.com', shippingAddress: address });
      if (i < 4) {
        await client.authorizePayment({ orderId: id, commandId: `${id}-a`, amountCents: '500', currency: 'EUR' });
        await client.capturePayment({ orderId: id, commandId: `${id}-c`, amountCents: '500' });
      }
    }
  } finally {
    client.close();
  }
  const outcome = async () => {
    const rows: { stream_id: string; type: string; tenant: string; principal: string }[] = [];
    for (const s of cluster.shards) {
      const { rows: r } = await s.sql.query<{ stream_id: string; type: string; tenant: string; principal: string }>(
        `SELECT stream_id, type, metadata->>'tenant' AS tenant, metadata->>'principal' AS principal FROM events
         WHERE stream_id LIKE $1 AND type IN ('OrderShipped', 'OrderCancelled', 'PaymentCaptureRecorded')`,
        [`order-header-${RUN}-%`],
      );
      rows.push(...r);
    }
    return rows;
  };
  await expect.poll(async () => (await outcome()).filter((r) => r.type !== 'PaymentCaptureRecorded').length, { timeout: 30_000, interval: 500 }).toBe(6);
  const rows = await outcome();
  const typeOf = (id: string, type: string) => rows.filter((r) => r.stream_id === `order-header-${id}` && r.type === type).length;
  for (const id of ids.slice(0, 4)) expect([typeOf(id, 'OrderShipped'), typeOf(id, 'OrderCancelled')], id).toEqual([1, 0]);
  for (const id of ids.slice(4)) expect([typeOf(id, 'OrderShipped'), typeOf(id, 'OrderCancelled')], id).toEqual([0, 1]);
  for (const r of rows) expect(r).toMatchObject({ tenant: 'tenant-a', principal: 'pm-worker' });
}, 60_000);
