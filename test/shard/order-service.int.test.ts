import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { createLogger } from '../../src/observability/logger.js';
import { statusOf } from '../../src/grpc/status.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';

let db: TestDatabase;
let shard: RunningShard;
let client: Clients;
let sql: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadShardConfig({ SHARDWRITE_INSECURE: 'true', DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off' });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
  client = connect(shard.address);
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
});

afterAll(async () => {
  client?.close();
  await shard?.close();
  await sql?.end();
  await db?.drop();
});

async function eventCount(): Promise<number> {
  return Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n);
}

describe('OrderService over gRPC', () => {
  it('runs an order through its life: place, lines, payment, ship', async () => {
    const placed = await client.call('PlaceOrder', placeOrder('o-life', { commandId: 'c-place' }));
    expect(placed).toMatchObject({ streamId: 'order-header-o-life', version: '1', duplicate: false });
    expect(placed.events.map((e) => [e.type, e.version])).toEqual([['OrderPlaced', '1']]);

    const line = await client.call('AddOrderLine', { orderId: 'o-life', lineId: 'l1', sku: 'SKU-1', quantity: 2, unitPriceCents: '1250' });
    expect(line).toMatchObject({ streamId: 'order-lines-o-life', version: '1' });
    expect(JSON.parse(line.events[0]!.data)).toMatchObject({ lineId: 'l1', quantity: 2, unitPriceCents: 1250 });

    await client.call('AuthorizePayment', { orderId: 'o-life', commandId: 'o-life-auth', amountCents: '2500', currency: 'EUR' });
    const captured = await client.call('CapturePayment', { orderId: 'o-life', commandId: 'o-life-cap', amountCents: '2500' });
    expect(captured).toMatchObject({ streamId: 'order-payment-o-life', version: '2' });

    const marked = await client.call('MarkPaymentCaptured', { orderId: 'o-life', amountCents: '2500' });
    expect(marked).toMatchObject({ streamId: 'order-header-o-life', version: '2' });
    const shipped = await client.call('ShipOrder', { orderId: 'o-life', carrier: 'DHL', trackingNumber: 'TRK1', expectedVersion: '2' });
    expect(shipped.version).toBe('3');

    const events = await client.readStream('order-header', 'o-life');
    expect(events.map((e) => [e.type, e.version])).toEqual([
      ['OrderPlaced', '1'],
      ['PaymentCaptureRecorded', '2'],
      ['OrderShipped', '3'],
    ]);
    expect(events[0]!.metadata.command_id).toBe('c-place');
    expect(BigInt(events[2]!.position)).toBeGreaterThan(BigInt(events[1]!.position));
  });

  it('answers a repeated command id with the original result and appends nothing', async () => {
    const first = await client.call('PlaceOrder', placeOrder('o-dup', { commandId: 'same' }));
    const before = await eventCount();
    const again = await client.call('PlaceOrder', placeOrder('o-dup', { commandId: 'same' }));
    expect(again).toMatchObject({ streamId: first.streamId, version: first.version, duplicate: true });
    expect(again.events.map((e) => e.type)).toEqual(['OrderPlaced']);
    expect(await eventCount()).toBe(before);
  });

  it('deduplicates a repeat that arrives while the first is still in flight', async () => {
    const calls = Array.from({ length: 8 }, () => client.call('AddOrderLine', { orderId: 'o-inflight', commandId: 'add-1', lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '1' }));
    const results = await Promise.all(calls);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set(['1']));
    expect((await client.readStream('order-lines', 'o-inflight')).length).toBe(1);
  });

  it('maps every refusal to its status code and ErrorInfo reason, writing nothing', async () => {
    await client.call('PlaceOrder', placeOrder('o-err'));
    const before = await eventCount();
    const cases: [string, object, grpc.status, string | undefined][] = [
      ['PlaceOrder', placeOrder('o-err'), grpc.status.FAILED_PRECONDITION, 'BUSINESS_RULE'],
      ['ShipOrder', { orderId: 'o-missing', carrier: 'DHL', trackingNumber: 'T' }, grpc.status.NOT_FOUND, 'AGGREGATE_NOT_FOUND'],
      ['PlaceOrder', { orderId: '' }, grpc.status.INVALID_ARGUMENT, 'VALIDATION'],
      ['PlaceOrder', placeOrder('x'.repeat(100_000)), grpc.status.INVALID_ARGUMENT, 'VALIDATION'],
      ['AddOrderLine', { orderId: 'o-err', lineId: 'l', sku: 's', quantity: 0, unitPriceCents: '1' }, grpc.status.INVALID_ARGUMENT, 'VALIDATION'],
      ['CapturePayment', { orderId: 'o-err', commandId: 'o-err-cap', amountCents: '5' }, grpc.status.FAILED_PRECONDITION, 'BUSINESS_RULE'],
      ['CancelOrder', { orderId: 'o-err', reason: 'x', expectedVersion: '7' }, grpc.status.ABORTED, 'VERSION_CONFLICT'],
    ];
    for (const [method, request, code, reason] of cases) {
      const out = await client.attempt(method as 'PlaceOrder', request);
      expect('error' in out, `${method} should fail`).toBe(true);
      if ('error' in out) {
        expect(grpc.status[out.error.code], `${method}: ${out.error.message}`).toBe(grpc.status[code]);
        expect(out.error.reason).toBe(reason);
      }
    }
    expect(await eventCount()).toBe(before);
  });

  it('reports the current version when expected_version does not match', async () => {
    await client.call('PlaceOrder', placeOrder('o-ver'));
    const out = await client.attempt('CancelOrder', { orderId: 'o-ver', reason: 'changed mind', expectedVersion: '0' });
    expect(out).toMatchObject({ error: { code: grpc.status.ABORTED, reason: 'VERSION_CONFLICT', metadata: { current_version: '1', expected_version: '0' } } });
    const ok = await client.call('CancelOrder', { orderId: 'o-ver', reason: 'changed mind', expectedVersion: '1' });
    expect(ok.version).toBe('2');
  });

  it('refuses undecodable bytes as INVALID_ARGUMENT and stays up', async () => {
    const raw = new grpc.Client(shard.address, grpc.credentials.createInsecure());
    const status = await new Promise<grpc.ServiceError>((resolve) =>
      raw.makeUnaryRequest(
        '/shardwrite.v1.OrderService/PlaceOrder',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0f]), // field 1 with wire type 7, which does not exist
        (err) => resolve(err!),
      ),
    );
    raw.close();
    expect(status.code, status.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(statusOf(status)).toMatchObject({ reason: 'VALIDATION' });
    expect(status.details).toContain('the message does not decode');
    const after = await client.call('PlaceOrder', placeOrder('o-after-garbage'));
    expect(after.version).toBe('1');
  });

  it('keeps 64 concurrent writers on one stream free of duplicate or missing versions', async () => {
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => client.call('AddOrderLine', { orderId: 'o-hot', commandId: `c${i}`, lineId: `l${i}`, sku: 'S', quantity: 1, unitPriceCents: '100' })),
    );
    expect(results.map((r) => Number(r.version)).sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    const { rows } = await sql.query("SELECT version FROM events WHERE stream_id = 'order-lines-o-hot' ORDER BY version");
    expect(rows.map((r: { version: string }) => Number(r.version))).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
  });

  it('refuses a 101st line with FAILED_PRECONDITION', async () => {
    for (let i = 0; i < 100; i++) await client.call('AddOrderLine', { orderId: 'o-full', lineId: `l${i}`, sku: 'S', quantity: 1, unitPriceCents: '1' });
    const out = await client.attempt('AddOrderLine', { orderId: 'o-full', lineId: 'l100', sku: 'S', quantity: 1, unitPriceCents: '1' });
    expect(out).toMatchObject({ error: { code: grpc.status.FAILED_PRECONDITION, reason: 'BUSINESS_RULE' } });
  });

  it('does not start a command whose deadline has already passed', async () => {
    const out = await client.attempt('PlaceOrder', placeOrder('o-late'), { deadlineMs: 1 });
    expect('error' in out && out.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });
});
