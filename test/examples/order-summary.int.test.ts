/**
 * The order-summary read model's SQL on a real PostgreSQL: what each event
 * does to the summary, and that applying an event again (redelivery) or
 * an older one changes nothing, also when an order's streams apply at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { applyEvent, describeSummary, migrate, readSummary } from '../../examples/order-summary/projection.js';
import type { ReceivedEvent } from '../../src/client/index.js';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase('sw_summary');
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  await migrate(pool);
  await migrate(pool); // idempotent
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const TYPES: Record<string, string> = {
  OrderPlaced: 'order-header',
  OrderShipped: 'order-header',
  OrderCancelled: 'order-header',
  ShippingAddressUpdated: 'order-header',
  OrderLineAdded: 'order-lines',
  OrderLineRemoved: 'order-lines',
  PaymentAuthorized: 'order-payment',
  PaymentCaptured: 'order-payment',
};

function ev(orderId: string, version: number, type: string, data: object): ReceivedEvent {
  const aggregateType = TYPES[type]!;
  return {
    eventId: `${orderId}-${aggregateType}-${version}`,
    aggregateType,
    aggregateId: orderId,
    streamId: `${aggregateType}-${orderId}`,
    version,
    type,
    schemaVersion: 1,
    data,
    rawData: JSON.stringify(data),
    recordedAt: undefined,
    metadata: {},
    checkpoint: '',
    shardId: 'shard-0',
  };
}

const line = (lineId: string, quantity: number, unitPriceCents: number) => ({ lineId, sku: 'sku', quantity, unitPriceCents, lineTotalCents: quantity * unitPriceCents });

describe('order_summary', () => {
  it('follows an order through its header, lines and payment', async () => {
    const events = [
      ev('o1', 1, 'OrderPlaced', { customerId: 'c1', customerEmail: 'a@b.co', shippingAddress: {}, placedAt: 'x' }),
      ev('o1', 1, 'OrderLineAdded', line('l1', 2, 1000)),
      ev('o1', 2, 'OrderLineAdded', line('l2', 1, 499)),
      ev('o1', 3, 'OrderLineRemoved', { lineId: 'l1' }),
      ev('o1', 1, 'PaymentAuthorized', { amountCents: 499, currency: 'EUR', authorizedAt: 'x' }),
      ev('o1', 2, 'ShippingAddressUpdated', { shippingAddress: {}, updatedAt: 'x' }),
      ev('o1', 2, 'PaymentCaptured', { amountCents: 200, currency: 'EUR', capturedAt: 'x' }),
    ];
    for (const e of events) expect(await applyEvent(pool, e)).toBe('applied');
    expect(await readSummary(pool, 'o1')).toEqual({
      orderId: 'o1',
      status: 'placed',
      customerId: 'c1',
      lineCount: 1,
      totalCents: 499,
      paymentState: 'partially-captured',
      authorizedCents: 499,
      capturedCents: 200,
      currency: 'EUR',
    });
    await applyEvent(pool, ev('o1', 3, 'PaymentCaptured', { amountCents: 299, currency: 'EUR', capturedAt: 'x' }));
    await applyEvent(pool, ev('o1', 3, 'OrderShipped', { carrier: 'ups', trackingNumber: '1', shippedAt: 'x' }));
    const s = (await readSummary(pool, 'o1'))!;
    expect(s).toMatchObject({ status: 'shipped', paymentState: 'captured', capturedCents: 499 });
    expect(describeSummary(s)).toBe('o1: shipped, 1 line, total 4.99 EUR, payment captured (4.99 EUR of 4.99 EUR captured)');
  });

  it('skips an event its stream already applied, and an older one', async () => {
    const added = ev('o2', 1, 'OrderLineAdded', line('l1', 1, 100));
    expect(await applyEvent(pool, added)).toBe('applied');
    expect(await applyEvent(pool, added)).toBe('skipped');
    expect(await applyEvent(pool, ev('o2', 2, 'OrderLineAdded', line('l2', 1, 50)))).toBe('applied');
    expect(await applyEvent(pool, added)).toBe('skipped');
    expect(await readSummary(pool, 'o2')).toMatchObject({ status: 'none', lineCount: 2, totalCents: 150 });
  });

  it('converges when redeliveries and the three streams of an order apply concurrently', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => ev('o3', i + 1, 'OrderLineAdded', line(`l${i}`, 1, 10)));
    const header = [ev('o3', 1, 'OrderPlaced', { customerId: 'c3' }), ev('o3', 2, 'OrderCancelled', { reason: 'r', cancelledAt: 'x' })];
    const payment = [ev('o3', 1, 'PaymentAuthorized', { amountCents: 300, currency: 'USD' }), ev('o3', 2, 'PaymentCaptured', { amountCents: 300, currency: 'USD' })];
    // Each stream in order (as a partition delivers it), each event twice, the streams side by side.
    const run = async (stream: ReceivedEvent[]) => {
      for (const e of stream) {
        await applyEvent(pool, e);
        await applyEvent(pool, e);
      }
    };
    await Promise.all([run(lines), run(header), run(payment), run(lines)]);
    expect(await readSummary(pool, 'o3')).toMatchObject({ status: 'cancelled', customerId: 'c3', lineCount: 30, totalCents: 300, paymentState: 'captured', currency: 'USD' });
  });
});
