/**
 * Data helpers for the rebalancing tests: placed orders written straight into
 * their owners' stores, and what the stores hold afterwards.
 */
import { RingView, type RingDocument } from '../../../src/ring/index.js';
import type { Cluster } from '../../support/cluster.js';

/**
 * Writes `count` placed orders (`${prefix}-<n>`, one `order-header` stream of
 * one OrderPlaced event each) straight into the stores of their owners under
 * `ring`, as a cluster holding data before the test begins.
 */
export async function seedOrders(cluster: Cluster, ring: RingDocument, prefix: string, count: number): Promise<void> {
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
export async function liveStreams(cluster: Cluster): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const s of cluster.shards) {
    const r = await s.sql.query<{ stream_id: string }>('SELECT stream_id FROM streams WHERE moved_at_epoch IS NULL');
    for (const row of r.rows) out.set(row.stream_id, [...(out.get(row.stream_id) ?? []), s.id]);
  }
  return out;
}

/** Stream rows sealed by a move and still present, over every shard. */
export async function sealedLeft(cluster: Cluster): Promise<number> {
  let n = 0;
  for (const s of cluster.shards) n += Number((await s.sql.query('SELECT count(*) AS n FROM streams WHERE moved_at_epoch IS NOT NULL')).rows[0].n);
  return n;
}
