/**
 * `npm run bench -- rehydrate [--iterations N]`: how long one cold load of an
 * `order-lines` aggregate with 10,000 events takes from each tier — full
 * replay, PostgreSQL snapshot, Redis snapshot (when REDIS_URL is set), owner
 * cache — and a full replay of a 50-event aggregate for comparison. Every
 * load but the owner-cache one uses a fresh AggregateCache (a cold load); each
 * tier runs its loads back to back after a warm-up.
 *
 * The snapshot tiers start 49 events before the head of the stream: the
 * most a load can replay with the default interval of 50.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisSnapshotCache } from '../src/cache/redis-snapshot-cache.js';
import { orderLines } from '../src/domain/orders/index.js';
import { AggregateLoader, replay, type AggregateLoaderOptions, type LoadTier, type LoadedAggregate } from '../src/pipeline/loader.js';
import { AggregateCache } from '../src/pipeline/aggregate-cache.js';
import { PgEventReader, migrate } from '../src/store/index.js';
import { PgSnapshotStore } from '../src/store/pg-snapshot-store.js';
import { benchDatabase, numberArg } from './support.js';

const BIG = 10_000;
const SMALL = 50;
/** Events after the snapshot in the snapshot tiers (interval − 1). */
const TAIL = 49;

/**
 * Writes an `order-lines` stream of `events` events: 100 lines added, then
 * lines removed and added again in turn, so the state holds ~100 lines (~10 kB).
 */
async function seedStream(pool: pg.Pool, orderId: string, events: number): Promise<string> {
  const streamId = `order-lines-${orderId}`;
  await pool.query(
    `INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
     SELECT $1, k,
            CASE WHEN added THEN 'OrderLineAdded' ELSE 'OrderLineRemoved' END,
            CASE WHEN added THEN 2 ELSE 1 END,
            CASE WHEN added
              THEN jsonb_build_object('lineId', 'l' || line, 'sku', 'SKU-' || line, 'quantity', 1 + line % 5,
                                      'unitPriceCents', 100 + line, 'lineTotalCents', (1 + line % 5) * (100 + line))
              ELSE jsonb_build_object('lineId', 'l' || line) END,
            jsonb_build_object('command_id', 'cmd-' || k)
     FROM (SELECT k,
                  k <= 100 OR (k - 101) % 2 = 1 AS added,
                  CASE WHEN k <= 100 THEN k - 1 ELSE ((k - 101) / 2) % 100 END AS line
           FROM generate_series(1, $2::int) AS k) s`,
    [streamId, events],
  );
  await pool.query(`INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version) VALUES ($1, 'order-lines', $2, $3)`, [streamId, orderId, events]);
  return streamId;
}

interface Row {
  readonly label: string;
  readonly samples: number[];
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

function summarize(rows: Row[], baseline: Row): void {
  const stats = rows.map((r) => {
    const s = [...r.samples].sort((a, b) => a - b);
    return { label: r.label, n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99) };
  });
  const base = stats[rows.indexOf(baseline)]!;
  const header = ['tier', 'loads', 'p50 ms', 'p95 ms', 'p99 ms', 'p50 vs replay', 'p95 vs replay', 'p99 vs replay'];
  const ratio = (a: number, b: number) => `${((a / b) * 100).toFixed(2)}%`;
  const body = stats.map((s) => [s.label, String(s.n), s.p50.toFixed(3), s.p95.toFixed(3), s.p99.toFixed(3), ratio(s.p50, base.p50), ratio(s.p95, base.p95), ratio(s.p99, base.p99)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  for (const b of body) console.log(line(b));
}

export async function run(server: string, args: string[]): Promise<void> {
  const iterations = numberArg(args, '--iterations', 200);
  const warmup = Math.max(10, Math.floor(iterations / 10));
  const redisUrl = process.env.REDIS_URL || undefined;

  const db = await benchDatabase(server, 'sw_bench_rehydrate');
  await migrate(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const prefix = `sw:bench:${randomBytes(4).toString('hex')}:`;
  const cache = redisUrl ? new RedisSnapshotCache({ url: redisUrl, keyPrefix: prefix, ttlSeconds: 600, timeoutMs: 1000 }) : undefined;
  try {
    const big = await seedStream(pool, 'big', BIG);
    const small = await seedStream(pool, 'small', SMALL);
    await pool.query('ANALYZE events');
    const reader = new PgEventReader(pool);
    const snapshots = new PgSnapshotStore(pool);

    // The snapshot a shard would hold: the state at BIG − TAIL, in PostgreSQL and in Redis.
    const head = (await reader.readStream(big, 1)).filter((e) => e.version <= BIG - TAIL);
    const atSnapshot = replay(orderLines, orderLines.initialState(), 0, undefined, head);
    const snapshot = {
      streamId: big,
      aggregateType: orderLines.aggregateType,
      version: atSnapshot.version,
      schemaVersion: orderLines.stateSchemaVersion,
      state: atSnapshot.state,
    };
    const saved = await snapshots.save(snapshot);
    if (cache) {
      await cache.waitUntilReady(2000);
      if (!(await cache.put({ ...snapshot, position: saved.position }))) throw new Error('could not write the Redis snapshot');
    }

    const memory = new AggregateLoader(reader, new AggregateCache());
    const expected = await memory.load(big, orderLines);
    const cold = (options: AggregateLoaderOptions = {}) => new AggregateLoader(reader, new AggregateCache(), undefined, options);

    const tier = (label: string, servedBy: LoadTier, load: () => Promise<LoadedAggregate>) => ({ row: { label, samples: [] as number[] }, servedBy, load });
    const tiers = [
      tier(`full replay (${BIG} events)`, 'replay', () => cold().load(big, orderLines)),
      tier(`postgres snapshot (+${TAIL} events)`, 'snapshot', () => cold({ snapshots }).load(big, orderLines)),
      ...(cache ? [tier(`redis snapshot (+${TAIL} events)`, 'redis', () => cold({ snapshots, snapshotCache: cache }).load(big, orderLines))] : []),
      tier('owner cache', 'memory', () => memory.load(big, orderLines)),
      tier(`full replay (${SMALL} events)`, 'replay', () => cold().load(small, orderLines)),
    ];

    // Every tier must produce the same aggregate, or its timing means nothing.
    for (const t of tiers.slice(0, -1)) {
      const got = await t.load();
      if (got.tier !== t.servedBy || got.version !== BIG || JSON.stringify(got.state) !== JSON.stringify(expected.state)) {
        throw new Error(`${t.row.label}: served by ${got.tier} at version ${got.version}, or a different state`);
      }
    }

    console.log(`rehydrate: order-lines aggregate, ${BIG} events (state ~${JSON.stringify(expected.state).length} bytes of JSON), ${iterations} cold loads per tier after ${warmup} warm-up rounds`);
    if (!cache) console.log('REDIS_URL is not set: the Redis tier is not measured');
    console.log();
    // One tier at a time, the 10,000-event replay last: it leaves megabytes of
    // garbage whose collection would otherwise land on the loads after it.
    for (const t of [...tiers.slice(1), tiers[0]!]) {
      for (let n = 0; n < warmup + iterations; n++) {
        const t0 = performance.now();
        await t.load();
        if (n >= warmup) t.row.samples.push(performance.now() - t0);
      }
      await new Promise((r) => setTimeout(r, 200));
    }

    const rows = tiers.map((t) => t.row);
    summarize(rows, rows[0]!);
    const p95 = (r: Row) =>
      pct(
        [...r.samples].sort((a, b) => a - b),
        95,
      );
    const replayBig = p95(rows[0]!);
    const pgSnap = p95(rows[1]!);
    const replaySmall = p95(rows[rows.length - 1]!);
    console.log(`\npostgres snapshot p95 / full replay p95 (${BIG} events): ${((pgSnap / replayBig) * 100).toFixed(2)}%   (target <= 5%)`);
    console.log(`postgres snapshot p95 (${BIG} events) / full replay p95 (${SMALL} events): ${(pgSnap / replaySmall).toFixed(2)}x   (target <= 2x)`);
  } finally {
    await cache?.close();
    if (redisUrl) {
      const redis = new Redis(redisUrl);
      await redis.del(`${prefix}order-lines-big`).finally(() => redis.disconnect());
    }
    await pool.end();
    await db.drop();
  }
}
