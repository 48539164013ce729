/**
 * A cluster of real processes for the rebalancing tests: a ring database,
 * shard processes on their own event stores (some on the ring, some spare,
 * running but owning nothing yet) and a router, every one on a port chosen up
 * front so a killed shard comes back at the address the ring names.
 */
import pg from 'pg';
import { PgRingStore, RingView, type RingDocument } from '../../../src/ring/index.js';
import { migrate } from '../../../src/store/index.js';
import type { ShardStore } from '../../support/checker.js';
import { createTestDatabase, type TestDatabase } from '../../support/pg.js';
import { freePort } from '../../support/postgres-process.js';
import { startProcess, type ServiceProcess } from '../../support/processes.js';

export interface RebalanceShard {
  readonly id: string;
  readonly address: string;
  readonly db: TestDatabase;
  readonly sql: pg.Pool;
  process: ServiceProcess;
  /** SIGKILLs the process if it runs, then starts it again on the same address and store. */
  restart(): Promise<void>;
}

export interface RebalanceCluster {
  readonly ringUrl: string;
  readonly ringStore: PgRingStore;
  readonly shards: RebalanceShard[];
  readonly routerAddress: string;
  shard(id: string): RebalanceShard;
  /** Every shard's store (on the ring or not), for the checker. */
  stores(): ShardStore[];
  /** The processes that should run and have exited, with their last output. */
  dead(): string[];
  close(): Promise<void>;
}

const SHARD_ENV: Record<string, string> = {
  RING_POLL_MS: '500',
  LOG_LEVEL: 'warn',
  METRICS_ADDRESS: 'off',
  // Snapshots every other event, so moves carry snapshots too.
  SNAPSHOT_INTERVAL: '2',
};

/** `total` shards `shard-0…`; the first `onRing` make up the ring at epoch 1. */
export async function startRebalanceCluster(total: number, onRing: number): Promise<RebalanceCluster> {
  const ringDb = await createTestDatabase('sw_rb_ring');
  const databases: TestDatabase[] = [ringDb];
  const processes: ServiceProcess[] = [];
  const ringStore = new PgRingStore({ connectionString: ringDb.url });
  const shards: RebalanceShard[] = [];
  try {
    const ports = await Promise.all(Array.from({ length: total + 1 }, () => freePort()));
    const dbs = await Promise.all(Array.from({ length: total }, () => createTestDatabase('sw_rb_shard')));
    databases.push(...dbs);
    await Promise.all(dbs.map((db) => migrate(db.url)));
    await ringStore.migrate();
    await ringStore.initIfEmpty({
      epoch: 1,
      shards: Array.from({ length: onRing }, (_, k) => ({ id: `shard-${k}`, address: `127.0.0.1:${ports[k]}` })),
    });
    const start = (id: string, address: string, db: TestDatabase) =>
      startProcess('shard/main.ts', { ...SHARD_ENV, SHARD_ID: id, GRPC_ADDRESS: address, DATABASE_URL: db.url, RING_DATABASE_URL: ringDb.url }).then((p) => {
        processes.push(p);
        return p;
      });
    const started = await Promise.all(
      dbs.map(async (db, k) => {
        const id = `shard-${k}`;
        const address = `127.0.0.1:${ports[k]}`;
        const shard: RebalanceShard = {
          id,
          address,
          db,
          sql: new pg.Pool({ connectionString: db.url, max: 3 }),
          process: await start(id, address, db),
          async restart() {
            const p = shard.process;
            if (p.child.exitCode === null && p.child.signalCode === null) {
              p.signal('SIGKILL');
              await p.exited;
            }
            shard.process = await start(id, address, db);
          },
        };
        return shard;
      }),
    );
    shards.push(...started);
    const routerAddress = `127.0.0.1:${ports[total]}`;
    const router = await startProcess('router/main.ts', {
      GRPC_ADDRESS: routerAddress,
      RING_DATABASE_URL: ringDb.url,
      RING_POLL_MS: '500',
      METRICS_ADDRESS: 'off',
      LOG_LEVEL: 'warn',
      SHARD_RECONNECT_MAX_MS: '500',
    });
    processes.push(router);
    const cluster: RebalanceCluster = {
      ringUrl: ringDb.url,
      ringStore,
      shards,
      routerAddress,
      shard(id) {
        const s = shards.find((x) => x.id === id);
        if (!s) throw new Error(`no shard ${id}`);
        return s;
      },
      stores: () => shards.map((s) => ({ shard: s.id, url: s.db.url })),
      dead: () =>
        [router, ...shards.map((s) => s.process)]
          .filter((p) => p.child.exitCode !== null || p.child.signalCode !== null)
          .map((p) => `${p.pid}: ${p.output().slice(-2000)}`),
      async close() {
        await Promise.all(processes.map((p) => p.stop(5000)));
        for (const s of shards) await s.sql.end();
        await ringStore.close();
        for (const db of databases) await db.drop().catch(() => {});
      },
    };
    return cluster;
  } catch (err) {
    await Promise.all(processes.map((p) => p.stop(2000)));
    for (const s of shards) await s.sql.end();
    await ringStore.close();
    for (const db of databases) await db.drop().catch(() => {});
    throw err;
  }
}

/**
 * Writes `count` placed orders (`${prefix}-<n>`, one `order-header` stream of
 * one OrderPlaced event each) straight into the stores of their owners under
 * `ring`, as a cluster holding data before the test begins.
 */
export async function seedOrders(cluster: RebalanceCluster, ring: RingDocument, prefix: string, count: number): Promise<void> {
  const view = new RingView(ring);
  const byShard = new Map<string, string[]>();
  for (let n = 0; n < count; n++) {
    const id = `${prefix}-${n}`;
    const owner = view.ownerOf(id).id;
    byShard.set(owner, [...(byShard.get(owner) ?? []), id]);
  }
  await Promise.all([...byShard].map(([shard, ids]) => cluster.shard(shard).sql.query(SEED_SQL, [ids])));
}

/** One placed order per id: its streams row and its OrderPlaced event. */
export const SEED_SQL = `
  WITH ids AS (SELECT unnest($1::text[]) AS id),
  rows AS (
    INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version)
    SELECT 'order-header-' || id, 'order-header', id, 1 FROM ids
  )
  INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
  SELECT 'order-header-' || id, 1, 'OrderPlaced', 1,
         jsonb_build_object(
           'customerId', 'seed', 'customerEmail', 'seed@example.com',
           'shippingAddress', jsonb_build_object('name', 'Seed', 'line1', '1 Seed Street', 'city', 'Berlin', 'postalCode', '10115', 'country', 'DE'),
           'placedAt', '2024-01-01T00:00:00.000Z'),
         '{}'::jsonb
  FROM ids`;

/** Live (not sealed) stream rows per shard: stream id → shard ids holding it. */
export async function liveStreams(cluster: RebalanceCluster): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const s of cluster.shards) {
    const r = await s.sql.query<{ stream_id: string }>('SELECT stream_id FROM streams WHERE moved_at_epoch IS NULL');
    for (const row of r.rows) out.set(row.stream_id, [...(out.get(row.stream_id) ?? []), s.id]);
  }
  return out;
}

/** Stream rows sealed by a move and still present, over every shard. */
export async function sealedLeft(cluster: RebalanceCluster): Promise<number> {
  let n = 0;
  for (const s of cluster.shards) n += Number((await s.sql.query('SELECT count(*) AS n FROM streams WHERE moved_at_epoch IS NOT NULL')).rows[0].n);
  return n;
}
