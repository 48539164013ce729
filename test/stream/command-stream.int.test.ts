import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { createLogger } from '../../src/observability/logger.js';
import { CommandFailedError, ConnectionLostError, createClient } from '../../src/client/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { placeOrder } from '../support/grpc.js';
import { startShardProcess } from '../support/processes.js';

let db: TestDatabase;
let shard: RunningShard;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadShardConfig({ SHARDWRITE_INSECURE: 'true', DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', STREAM_MAX_IN_FLIGHT: '5000' });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
});

afterAll(async () => {
  await shard?.close();
  await db?.drop();
});

const line = (orderId: string, i: number) => ({ orderId, lineId: `l${i}`, sku: 'SKU', quantity: 1, unitPriceCents: '100' });

describe('CommandStreamService on a shard', () => {
  it('answers thousands of interleaved commands on several streams exactly once, keeping each aggregate in order', async () => {
    const clients = Array.from({ length: 4 }, () => createClient(shard.address));
    const orders = Array.from({ length: 40 }, (_, i) => `s-${i}`);
    const sends: Promise<{ order: string; i: number; version: number }>[] = [];
    // 40 orders x 50 lines = 2,000 commands, each order's lines spread over one stream in order,
    // the orders interleaved over 4 streams.
    for (let i = 0; i < 50; i++) {
      for (const [k, order] of orders.entries()) {
        const c = clients[k % clients.length]!;
        sends.push(c.addOrderLine(line(order, i)).then((r) => ({ order, i, version: Number(r.version) })));
      }
    }
    const results = await Promise.all(sends);
    expect(results).toHaveLength(2000);
    for (const r of results) expect(r.version).toBe(r.i + 1);
    for (const c of clients) c.close();
  });

  it('keeps the stream open across errors, answering each command with its own outcome', async () => {
    const client = createClient(shard.address);
    const outcomes = await Promise.allSettled([
      client.placeOrder(placeOrder('mixed-1') as never),
      client.placeOrder(placeOrder('mixed-1') as never), // already placed
      client.shipOrder({ orderId: 'mixed-missing', carrier: 'DHL', trackingNumber: 'T' }),
      client.addOrderLine({ ...line('mixed-1', 0), quantity: 0 }), // invalid
      client.cancelOrder({ orderId: 'mixed-1', reason: 'changed mind', expectedVersion: '5' }),
      client.addOrderLine(line('mixed-1', 1)),
    ]);
    const summary = outcomes.map((o) => (o.status === 'fulfilled' ? 'OK' : o.reason instanceof CommandFailedError ? `${grpc.status[o.reason.code]}/${o.reason.reason}` : String(o.reason)));
    expect(summary).toEqual(['OK', 'FAILED_PRECONDITION/BUSINESS_RULE', 'NOT_FOUND/AGGREGATE_NOT_FOUND', 'INVALID_ARGUMENT/VALIDATION', 'ABORTED/VERSION_CONFLICT', 'OK']);
    client.close();
  });

  it('deduplicates by command id on the stream like the unary API', async () => {
    const client = createClient(shard.address);
    const [a, b] = await Promise.all([client.addOrderLine({ ...line('dedupe-1', 0), commandId: 'cmd-1' }), client.addOrderLine({ ...line('dedupe-1', 0), commandId: 'cmd-1' })]);
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    expect(a.version).toBe(b.version);
    client.close();
  });

  it('answers commands beyond the per-stream cap with RESOURCE_EXHAUSTED outcomes', async () => {
    const db2 = await createTestDatabase();
    const small = await startShard(loadShardConfig({ SHARDWRITE_INSECURE: 'true', DATABASE_URL: db2.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', STREAM_MAX_IN_FLIGHT: '8' }), {
      logger: createLogger('test-shard', 'silent'),
    });
    const client = createClient(small.address);
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => client.addOrderLine(line(`cap-${i}`, 0))));
    const refused = outcomes.filter((o) => o.status === 'rejected' && (o.reason as CommandFailedError).reason === 'OVERLOADED');
    expect(refused.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThanOrEqual(8);
    client.close();
    await small.close();
    await db2.drop();
  });

  it('fails pending commands with ConnectionLostError when the shard dies, and reconnects for the next', async () => {
    const db3 = await createTestDatabase();
    const proc = await startShardProcess({ DATABASE_URL: db3.url });
    const client = createClient(proc.address);
    await client.placeOrder(placeOrder('lost-0'));
    const inFlight = Array.from({ length: 200 }, (_, i) => client.addOrderLine(line(`lost-${i}`, 0)).catch((e: unknown) => e));
    proc.signal('SIGKILL');
    const settled = await Promise.all(inFlight);
    const lost = settled.filter((s) => s instanceof ConnectionLostError);
    // Everything got an answer: a result, or a clear "connection lost".
    for (const s of settled) expect(s instanceof ConnectionLostError || (s as { version?: string }).version !== undefined).toBe(true);
    expect(lost.length).toBeGreaterThan(0);
    expect(client.pending).toBe(0);
    await proc.exited;
    // The shard comes back on the same address: the client opens a new stream by itself.
    const again = await startShardProcess({ DATABASE_URL: db3.url, GRPC_ADDRESS: proc.address });
    const after = await client.addOrderLine(line('lost-after', 0));
    expect(after.version).toBe('1');
    client.close();
    await again.stop();
    await db3.drop();
  });

  it('drains on SIGTERM: open streams get their outcomes, refuse new commands, and do not hold the shutdown', async () => {
    const db4 = await createTestDatabase();
    const proc = await startShardProcess({ DATABASE_URL: db4.url, SHUTDOWN_GRACE_MS: '10000' });
    const client = createClient(proc.address);
    await client.placeOrder(placeOrder('drain-0'));
    const answeredAt: number[] = [];
    const before = Array.from({ length: 100 }, (_, i) =>
      client.addOrderLine(line(`drain-${i}`, 0)).then(
        () => {
          answeredAt.push(Date.now());
          return 'OK' as const;
        },
        (e: unknown) => e,
      ),
    );
    // Signal once the shard is working through them: the commands are in flight, not still in the client.
    while (answeredAt.length === 0) await new Promise((r) => setTimeout(r, 1));
    const signalledAt = Date.now();
    proc.signal('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const after = await client.addOrderLine(line('drain-late', 0)).then(
      () => 'OK',
      (e: unknown) => e,
    );
    const code = await proc.exited;
    const outcomes = await Promise.all(before);
    expect(code).toBe(0);
    // The open stream did not hold the shutdown until the grace period ran out.
    expect(proc.output()).not.toContain('grace period over');
    for (const o of outcomes) expect(o === 'OK' || o instanceof ConnectionLostError || (o as CommandFailedError).code === grpc.status.UNAVAILABLE).toBe(true);
    // Every command the shard took got its outcome: applied, or refused by the draining shard (a status
    // it decided). A connection may be lost only for commands the shard never applied (still in the
    // socket when the stream closed): one applied without its outcome is what a drain must never do.
    const summary = outcomes.map((o) => (o === 'OK' ? 'OK' : o instanceof ConnectionLostError ? 'lost' : `${(o as CommandFailedError).code}/${(o as CommandFailedError).reason}`));
    const lost = outcomes.flatMap((o, i) => (o instanceof ConnectionLostError ? [`order-lines-drain-${i}`] : []));
    const sql = new pg.Client({ connectionString: db4.url });
    await sql.connect();
    const appliedButLost = (await sql.query('SELECT DISTINCT stream_id FROM events WHERE stream_id = ANY($1::text[])', [lost])).rows;
    await sql.end();
    expect(appliedButLost, summary.join(',')).toEqual([]);
    for (const o of outcomes) if (o !== 'OK' && !(o instanceof ConnectionLostError)) expect((o as CommandFailedError).reason).toBe('SHARD_UNAVAILABLE');
    expect(answeredAt.filter((t) => t >= signalledAt).length, 'outcomes delivered after the signal').toBeGreaterThan(0);
    // A command sent after the signal is refused (or its stream is gone), never applied silently.
    expect(after).not.toBe('OK');
    expect(after instanceof ConnectionLostError || (after as CommandFailedError).code === grpc.status.UNAVAILABLE).toBe(true);
    client.close();
    await db4.drop();
  });
});
