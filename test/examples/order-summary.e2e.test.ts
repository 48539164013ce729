/**
 * The order-summary example end to end: the example runs as its own process
 * (a consumer group through the router) while order commands go in; it is
 * SIGKILLed half-way and started again (its group resumes after its last
 * acknowledgement, and redelivered events are skipped by stream version).
 * The table converges to exactly what the commands did.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { createClient, type ShardwriteClient } from '../../src/client/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startProcess, type ServiceProcess } from '../support/processes.js';

const run = randomBytes(4).toString('hex');
const ORDERS = 24;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Expected {
  status: string;
  lines: Map<string, number>;
  authorized: number;
  captured: number;
}

let cluster: Cluster;
let db: TestDatabase;
let pool: pg.Pool;
let client: ShardwriteClient;
const examples: ServiceProcess[] = [];
const expected = new Map<string, Expected>();

const startExample = async () => {
  const p = await startProcess(
    'examples/order-summary/main.ts',
    { SHARDWRITE_ADDRESS: cluster.routerAddress, ORDER_SUMMARY_DATABASE_URL: db.url, ORDER_SUMMARY_GROUP: `summary-${run}` },
    /order-summary (following) /,
  );
  examples.push(p);
  return p;
};

/** One order's life: placed, lines added and one removed, paid in two captures, shipped or cancelled. */
async function drive(orderId: string, n: number): Promise<void> {
  const e: Expected = { status: 'placed', lines: new Map(), authorized: 0, captured: 0 };
  expected.set(orderId, e);
  await client.placeOrder({
    orderId,
    commandId: `${orderId}-place`,
    customerId: `c${n}`,
    customerEmail: `c${n}@example.com`,
    shippingAddress: { name: 'Ada', line1: '1 Main St', city: 'London', postalCode: 'N1', country: 'GB' },
  });
  for (let l = 0; l < 4; l++) {
    await client.addOrderLine({ orderId, commandId: `${orderId}-add-${l}`, lineId: `l${l}`, sku: `sku${l}`, quantity: l + 1, unitPriceCents: 100 + n });
    e.lines.set(`l${l}`, (l + 1) * (100 + n));
  }
  await client.removeOrderLine({ orderId, commandId: `${orderId}-remove`, lineId: 'l1' });
  e.lines.delete('l1');
  const total = [...e.lines.values()].reduce((a, b) => a + b, 0);
  await client.authorizePayment({ orderId, commandId: `${orderId}-auth`, amountCents: total, currency: 'EUR' });
  e.authorized = total;
  await client.capturePayment({ orderId, commandId: `${orderId}-cap1`, amountCents: 100 });
  e.captured = 100;
  if (n % 2 === 0) {
    await client.capturePayment({ orderId, commandId: `${orderId}-cap2`, amountCents: total - 100 });
    e.captured = total;
    // The header ships only once told of the capture (the order-fulfilment process manager's job; no worker runs here).
    await client.markPaymentCaptured({ orderId, commandId: `${orderId}-mark`, amountCents: total });
    await client.shipOrder({ orderId, commandId: `${orderId}-ship`, carrier: 'ups', trackingNumber: `t${n}` });
    e.status = 'shipped';
  } else {
    await client.cancelOrder({ orderId, commandId: `${orderId}-cancel`, reason: 'changed mind' });
    e.status = 'cancelled';
  }
}

beforeAll(async () => {
  cluster = await startCluster({ shards: 3 });
  db = await createTestDatabase('sw_summary_e2e');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  client = createClient(cluster.routerAddress);
  let example = await startExample();
  const half = Math.floor(ORDERS / 2);
  await Promise.all(Array.from({ length: half }, (_, n) => drive(`sum-${run}-${n}`, n)));
  await sleep(500);
  example.signal('SIGKILL');
  await example.exited;
  // Commands keep coming while the read model is down.
  await Promise.all(Array.from({ length: ORDERS - half }, (_, k) => drive(`sum-${run}-${half + k}`, half + k)));
  example = await startExample();
}, 240_000);

afterAll(async () => {
  client?.close();
  await Promise.all(examples.map((p) => p.stop(5000)));
  await pool?.end();
  await db?.drop();
  await cluster?.close();
});

describe('the order-summary read model', () => {
  it('converges to what the commands did, although it was killed and restarted', async () => {
    const want = [...expected]
      .map(([orderId, e]) => {
        const total = [...e.lines.values()].reduce((a, b) => a + b, 0);
        return {
          order_id: orderId,
          status: e.status,
          line_count: e.lines.size,
          total_cents: String(total),
          payment_state: e.captured >= e.authorized ? 'captured' : 'partially-captured',
          authorized_cents: String(e.authorized),
          captured_cents: String(e.captured),
        };
      })
      .sort((a, b) => a.order_id.localeCompare(b.order_id));
    const read = async () =>
      (await pool.query(`SELECT order_id, status, line_count, total_cents, payment_state, authorized_cents, captured_cents FROM order_summary ORDER BY order_id`)).rows.sort(
        (a: { order_id: string }, b: { order_id: string }) => a.order_id.localeCompare(b.order_id),
      );
    await expect.poll(read, { timeout: 60_000, interval: 500 }).toEqual(want);
    // Every stream's last applied version is its last event (nothing skipped, nothing beyond).
    const applied = await pool.query(`SELECT count(*)::int AS n FROM order_summary_applied`);
    expect(applied.rows[0].n).toBe(ORDERS * 3);
  }, 120_000);
});
