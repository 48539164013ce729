/**
 * The cleanup deletes an old copy only when its new copy has the same
 * content (a digest of every event), not merely the same version.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Rebalancer } from '../../src/rebalance/rebalancer.js';
import { RingView } from '../../src/ring/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder } from '../support/grpc.js';
import { expectRejection } from '../support/expect-error.js';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ shards: 1, spares: 1 });
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

it('refuses to delete an old copy whose new copy was damaged, and finishes once the copy is right', async () => {
  const client = connect(cluster.routerAddress);
  const target = new RingView({ epoch: 2, shards: [...cluster.ring.shards, { id: 'shard-1', address: cluster.shard('shard-1').address }] });
  const ids = Array.from({ length: 200 }, (_, i) => `dg-${i}`);
  await Promise.all(ids.map((id) => client.call('PlaceOrder', placeOrder(id))));
  client.close();
  const moving = ids.find((id) => target.ownerOf(id).id === 'shard-1')!;
  const request = { kind: 'add', shardId: 'shard-1', address: cluster.shard('shard-1').address } as const;

  // Run the move up to its cleanup, and stop there.
  const stop = new AbortController();
  await expectRejection(new Rebalancer({ ringDatabaseUrl: cluster.ringUrl, signal: stop.signal, onProgress: (p) => p.phase === 'cleanup' && stop.abort() }).run(request));
  const copy = cluster.shard('shard-1').sql;
  const original = await copy.query(`SELECT data FROM events WHERE stream_id = $1`, [`order-header-${moving}`]);
  expect(original.rows).toHaveLength(1);

  // Damage the copy without changing its version or count (the store is append-only: switch its guard off first).
  await copy.query('ALTER TABLE events DISABLE TRIGGER events_append_only');
  await copy.query(`UPDATE events SET data = jsonb_set(data, '{customerId}', '"someone-else"') WHERE stream_id = $1`, [`order-header-${moving}`]);
  await expectRejection(new Rebalancer({ ringDatabaseUrl: cluster.ringUrl }).run(request), /differs in content/);
  const old = await cluster.shard('shard-0').sql.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = $1`, [`order-header-${moving}`]);
  expect(old.rows[0].n).toBe(1);

  await copy.query(`UPDATE events SET data = $2 WHERE stream_id = $1`, [`order-header-${moving}`, original.rows[0].data]);
  await copy.query('ALTER TABLE events ENABLE TRIGGER events_append_only');
  const done = await new Rebalancer({ ringDatabaseUrl: cluster.ringUrl }).run(request);
  expect(done.outcome).toBe('done');
  const gone = await cluster.shard('shard-0').sql.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = $1`, [`order-header-${moving}`]);
  expect(gone.rows[0].n).toBe(0);
}, 180_000);
