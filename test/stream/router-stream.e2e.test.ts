import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { CommandFailedError, ConnectionLostError, createClient } from '../../src/client/index.js';
import { loadApi } from '../../src/grpc/proto.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { placeOrder } from '../support/grpc.js';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ shards: 3, routerEnv: { STREAM_MAX_IN_FLIGHT: '4096' } });
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

const line = (orderId: string, i: number) => ({ orderId, lineId: `l${i}`, sku: 'SKU', quantity: 1, unitPriceCents: '100' });

describe('command streams through the router', () => {
  it('answers thousands of interleaved commands on several streams exactly once, in order per aggregate, over all shards', async () => {
    const clients = Array.from({ length: 4 }, () => createClient(cluster.router.address));
    const orders = Array.from({ length: 60 }, (_, i) => `rs-${i}`);
    const sends: Promise<{ i: number; version: number; streamId: string }>[] = [];
    for (let i = 0; i < 40; i++) {
      for (const [k, order] of orders.entries()) {
        sends.push(clients[k % 4]!.addOrderLine(line(order, i)).then((r) => ({ i, version: Number(r.version), streamId: r.streamId })));
      }
    }
    const results = await Promise.all(sends);
    expect(results).toHaveLength(2400);
    for (const r of results) expect(r.version).toBe(r.i + 1);
    // Every shard got some of them.
    const counts = await Promise.all(cluster.shards.map(async (s) => Number((await s.sql.query('SELECT count(*) AS n FROM events')).rows[0].n)));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(2400);
    for (const n of counts) expect(n).toBeGreaterThan(0);
    for (const c of clients) c.close();
  });

  it('answers each command with its own outcome, successes and errors mixed on one stream', async () => {
    const client = createClient(cluster.router.address);
    const outcomes = await Promise.allSettled([
      client.placeOrder(placeOrder('rmix-1') as never),
      client.placeOrder(placeOrder('rmix-1') as never),
      client.shipOrder({ orderId: 'rmix-missing', carrier: 'DHL', trackingNumber: 'T' }),
      client.addOrderLine({ ...line('rmix-1', 0), quantity: 0 }),
      client.addOrderLine({ ...line('rmix-1', 1), commandId: 'x' }),
      client.addOrderLine({ ...line('rmix-1', 1), commandId: 'x' }),
    ]);
    const summary = outcomes.map((o) =>
      o.status === 'fulfilled' ? (o.value.duplicate ? 'DUP' : 'OK') : o.reason instanceof CommandFailedError ? `${grpc.status[o.reason.code]}/${o.reason.reason}` : String(o.reason),
    );
    expect(summary).toEqual(['OK', 'FAILED_PRECONDITION/BUSINESS_RULE', 'NOT_FOUND/AGGREGATE_NOT_FOUND', 'INVALID_ARGUMENT/VALIDATION', 'OK', 'DUP']);
    client.close();
  });

  it('answers a dead shard’s commands with their own UNAVAILABLE outcomes while the stream and other shards carry on', async () => {
    const client = createClient(cluster.router.address);
    // Warm up: find orders on each shard.
    const ids = Array.from({ length: 30 }, (_, i) => `rdead-${i}`);
    const placed = await Promise.all(ids.map((id) => client.placeOrder(placeOrder(id) as never)));
    expect(placed).toHaveLength(30);
    const victim = cluster.shards[1]!;
    victim.process.signal('SIGKILL');
    await victim.process.exited;
    const outcomes = await Promise.allSettled(ids.map((id) => client.addOrderLine(line(id, 0))));
    const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
    const unavailable = outcomes.filter((o) => o.status === 'rejected' && (o.reason instanceof ConnectionLostError ? false : (o.reason as CommandFailedError).code === grpc.status.UNAVAILABLE)).length;
    expect(ok).toBeGreaterThan(0);
    expect(unavailable).toBeGreaterThan(0);
    expect(ok + unavailable).toBe(30);
    // The client's stream is still open: after the shard returns, its orders work again.
    await victim.restart();
    let recovered = false;
    for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
      const again = await Promise.allSettled(ids.map((id) => client.addOrderLine({ ...line(id, 0), commandId: `retry-${id}` })));
      recovered = again.every((o) => o.status === 'fulfilled' || (o.reason as CommandFailedError).reason === 'BUSINESS_RULE');
      if (!recovered) await new Promise((r) => setTimeout(r, 200));
    }
    expect(recovered).toBe(true);
    client.close();
  });

  it('keeps the router bounded and serving others while a caller never reads its outcomes', async () => {
    const api = loadApi();
    const stub = new api.shardwrite.v1.CommandStreamService(cluster.router.address, grpc.credentials.createInsecure());
    const call = stub.execute();
    call.on('error', () => {});
    call.pause(); // never read
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${cluster.router.pid}/status`, 'utf8'))?.[1] ?? 0);
    const before = rss();
    const total = 20_000;
    for (let i = 0; i < total; i++) {
      // Fire and forget: grpc-js buffers on the caller's side once the router stops reading.
      call.write({ requestId: String(i), placeOrder: placeOrder(`slow-${i}`) });
    }
    await new Promise((r) => setTimeout(r, 3000));
    const growthKiB = rss() - before;
    const created = (await Promise.all(cluster.shards.map(async (s) => Number((await s.sql.query("SELECT count(*) AS n FROM streams WHERE aggregate_id LIKE 'slow-%'")).rows[0].n)))).reduce(
      (a, b) => a + b,
      0,
    );
    call.cancel();
    stub.close();
    expect(created).toBeGreaterThan(0);
    expect(growthKiB).toBeLessThan(200 * 1024);
    const other = createClient(cluster.router.address);
    expect((await other.placeOrder(placeOrder('after-slow') as never)).version).toBe('1');
    other.close();
    console.log(`[slow reader] ${created} of ${total} commands taken before flow control stopped the caller; router RSS +${growthKiB} KiB`);
  });
});
