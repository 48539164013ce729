import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { createLogger } from '../../src/observability/logger.js';
import { decodeCheckpoint } from '../../src/subscriptions/position.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';
import { subscribe, versionsByStream } from '../support/subscriber.js';
import { expectRejection } from '../support/expect-error.js';

let db: TestDatabase;
let shard: RunningShard;
let client: Clients;

beforeAll(async () => {
  db = await createTestDatabase('sw_sub');
  const config = loadShardConfig({ SHARDWRITE_INSECURE: 'true', DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', SHARD_ID: 'shard-7' });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
  client = connect(shard.address);
  for (let i = 0; i < 20; i++) {
    await client.call('PlaceOrder', placeOrder(`o${i}`));
    await client.call('AddOrderLine', { orderId: `o${i}`, lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '100' });
  }
});

afterAll(async () => {
  client?.close();
  await shard?.close();
  await db?.drop();
});

describe('Subscribe sent straight to a shard', () => {
  it('delivers every event from the beginning, then says it caught up, then delivers live', async () => {
    const sub = subscribe(shard.address);
    try {
      await sub.until(() => sub.caughtUp(), 20_000, 'caught_up');
      expect(sub.events).toHaveLength(40);
      const first = sub.events[0]!;
      expect(first).toMatchObject({ aggregateType: 'order-header', aggregateId: 'o0', streamId: 'order-header-o0', version: '1', type: 'OrderPlaced', shardId: 'shard-7' });
      expect(first.eventId).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.parse(first.data)).toMatchObject({ customerId: 'cust-1' });
      expect(new Set(sub.events.map((e) => e.eventId)).size).toBe(40);

      await client.call('MarkPaymentCaptured', { orderId: 'o3', amountCents: '5' });
      await client.call('ShipOrder', { orderId: 'o3', carrier: 'DHL', trackingNumber: 'T1' });
      await sub.until(() => sub.events.length === 42, 10_000, 'the live events');
      expect(sub.events[40]).toMatchObject({ streamId: 'order-header-o3', version: '2', type: 'PaymentCaptureRecorded' });
      expect(sub.events[41]).toMatchObject({ streamId: 'order-header-o3', version: '3', type: 'OrderShipped' });
    } finally {
      sub.close();
    }
  });

  it('resumes right after a checkpoint, with nothing missed and nothing repeated', async () => {
    const first = subscribe(shard.address, { aggregateTypes: ['order-lines'] });
    await first.until(() => first.events.length >= 10);
    const resumeAt = first.events[9]!.checkpoint;
    const seen = first.events.slice(0, 10).map((e) => e.eventId);
    await first.until(() => first.caughtUp());
    const all = first.events.map((e) => e.eventId);
    first.close();

    expect(decodeCheckpoint(resumeAt).has('shard-7')).toBe(true);
    const again = subscribe(shard.address, { from: resumeAt, aggregateTypes: ['order-lines'] });
    try {
      await again.until(() => again.caughtUp());
      expect([...seen, ...again.events.map((e) => e.eventId)]).toEqual(all);
      expect(again.events.every((e) => e.aggregateType === 'order-lines')).toBe(true);
    } finally {
      again.close();
    }
  });

  it('from "end" delivers only what commits afterwards, and filters by event type', async () => {
    const sub = subscribe(shard.address, { from: 'end', eventTypes: ['OrderCancelled'] });
    try {
      await sub.until(() => sub.caughtUp());
      await client.call('AddOrderLine', { orderId: 'o5', lineId: 'l2', sku: 'S', quantity: 1, unitPriceCents: '100' });
      await client.call('CancelOrder', { orderId: 'o5', reason: 'changed mind' });
      await sub.until(() => sub.events.length === 1);
      expect(sub.events[0]).toMatchObject({ type: 'OrderCancelled', aggregateId: 'o5' });
      expect([...versionsByStream(sub.events).keys()]).toEqual(['order-header-o5']);
    } finally {
      sub.close();
    }
  });

  it('refuses an unknown aggregate type and a malformed checkpoint with INVALID_ARGUMENT', async () => {
    for (const request of [{ aggregateTypes: ['no-such-type'] }, { from: 'not a token!' }]) {
      const sub = subscribe(shard.address, request);
      await expectRejection(
        sub.until(() => false, 5000),
        /subscription failed/,
      );
      expect(sub.error()?.code).toBe(grpc.status.INVALID_ARGUMENT);
      sub.close();
    }
  });
});

describe('a subscription over a store larger than a page and the live tail', () => {
  it('delivers every event of a 50,000-event store once, in feed order, before it says caught up', async () => {
    const sql = (await import('pg')).default;
    const pool = new sql.Pool({ connectionString: db.url, max: 2 });
    try {
      await pool.query(
        `INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
         SELECT 'order-header-big-' || (g / 10), (g % 10) + 1, 'OrderPlaced', 1, '{"n": 1}', '{}' FROM generate_series(0, 49999) g`,
      );
      const total = Number((await pool.query('SELECT count(*) AS n FROM events')).rows[0].n);
      const sub = subscribe(shard.address);
      try {
        await sub.until(() => sub.caughtUp(), 60_000, 'caught_up');
        expect(sub.events.length).toBe(total);
        expect(new Set(sub.events.map((e) => e.eventId)).size).toBe(total);
      } finally {
        sub.close();
      }
    } finally {
      await pool.end();
    }
  }, 90_000);
});
