/**
 * `npm run bench -- fulfilment [--orders N] [--in-flight C]`: order
 * fulfilment end to end on real processes (a router, 3 shards, the
 * pm-worker). C concurrent callers (default 32) place, authorize and capture
 * N orders (default 1,000); the process manager marks each capture on the
 * header and ships the order. Prints:
 *  - orders fully processed per second: N over the time from the first
 *    PlaceOrder sent to the last OrderShipped committed;
 *  - capture → ship delay p50/p90/p99/max: from CapturePayment acknowledged
 *    (the client's clock) to OrderShipped committed (`recorded_at`, the
 *    database's clock, the same machine).
 */
import pg from 'pg';
import { createClient } from '../src/client/index.js';
import { startCluster } from '../test/support/cluster.js';
import { startProcess } from '../test/support/processes.js';
import { numberArg } from './support.js';

const ADDRESS = { name: 'N', line1: 'L', city: 'C', postalCode: '1', country: 'DE' };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export async function run(_server: string, args: string[]): Promise<void> {
  const n = numberArg(args, '--orders', 1000);
  const inFlight = numberArg(args, '--in-flight', 32);
  const cluster = await startCluster({ shards: 3, shardEnv: { LOG_LEVEL: 'error' }, routerEnv: { LOG_LEVEL: 'error' } });
  const worker = await startProcess(
    'pm-worker/main.ts',
    { PM_SOURCE: cluster.routerAddress, RING_DATABASE_URL: cluster.ringUrl, PM_PAYMENT_TIMEOUT_MS: '600000', LOG_LEVEL: 'error', METRICS_ADDRESS: 'off' },
    /pm-worker listening on (\S+)/,
  );
  const client = createClient(cluster.routerAddress);
  const prefix = `bf${Date.now().toString(36)}`;
  try {
    const captured = new Map<string, number>();
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) {
          const id = `${prefix}-${next++}`;
          await client.placeOrder({ orderId: id, commandId: `${id}-p`, customerId: 'c', customerEmail: 'c@example.com', shippingAddress: ADDRESS });
          await client.authorizePayment({ orderId: id, commandId: `${id}-a`, amountCents: '1000', currency: 'EUR' });
          await client.capturePayment({ orderId: id, commandId: `${id}-c`, amountCents: '1000' });
          captured.set(`order-header-${id}`, Date.now());
        }
      }),
    );
    const sentSeconds = (Date.now() - t0) / 1000;
    const shipped = new Map<string, number>();
    const pools = cluster.shards.map((s) => new pg.Pool({ connectionString: s.databaseUrl, max: 1 }));
    const deadline = Date.now() + 300_000;
    while (shipped.size < n && Date.now() < deadline) {
      for (const pool of pools) {
        const { rows } = await pool.query<{ stream_id: string; at: Date }>(`SELECT stream_id, recorded_at AS at FROM events WHERE type = 'OrderShipped' AND stream_id LIKE $1`, [
          `order-header-${prefix}-%`,
        ]);
        for (const r of rows) shipped.set(r.stream_id, r.at.getTime());
      }
      if (shipped.size < n) await new Promise((r) => setTimeout(r, 250));
    }
    await Promise.all(pools.map((p) => p.end()));
    const last = Math.max(...shipped.values());
    const delays = [...shipped].map(([stream, at]) => at - captured.get(stream)!).sort((a, b) => a - b);
    console.log(`fulfilment: ${n} orders, ${inFlight} callers; 3 shards, 1 pm-worker`);
    console.log(`  commands sent (place, authorize, capture) in ${sentSeconds.toFixed(1)} s: ${((3 * n) / sentSeconds).toFixed(0)} commands/s`);
    console.log(`  shipped ${shipped.size}/${n}; fully processed ${(shipped.size / ((last - t0) / 1000)).toFixed(1)} orders/s (first place → last ship ${((last - t0) / 1000).toFixed(1)} s)`);
    console.log(`  capture → ship delay: p50 ${percentile(delays, 50)} ms, p90 ${percentile(delays, 90)} ms, p99 ${percentile(delays, 99)} ms, max ${delays.at(-1)} ms`);
  } finally {
    client.close();
    await worker.stop(5000);
    await cluster.close();
  }
}
