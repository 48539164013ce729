/**
 * A subscriber that reads behind a rebalance still gets a moved stream in
 * order (I12): the new owner's copies hold its later events back until the
 * old owner's feed has delivered the earlier ones. Deterministic: the old
 * owner's feed has thousands of events in front of the moved stream's, the
 * new owner's feed starts with the copies.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ringCommand, type Output } from '../../cli/ring.js';
import { RingView } from '../../src/ring/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';
import { subscribe } from '../support/subscriber.js';
import { checkDelivery } from './support.js';

let cluster: Cluster;
let client: Clients;

beforeAll(async () => {
  cluster = await startCluster({ shards: 1, spares: 1 });
  client = connect(cluster.routerAddress);
}, 120_000);

afterAll(async () => {
  client?.close();
  await cluster?.close();
});

it('delivers a moved stream in version order to a subscriber far behind the move, each event once', async () => {
  for (let i = 0; i < 3000; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => client.call('PlaceOrder', placeOrder(`fill-${i + j}`))));
  }
  const target = new RingView({ epoch: 2, shards: [...cluster.ring.shards, { id: 'shard-1', address: cluster.shard('shard-1').address }] });
  const moving = Array.from({ length: 100 }, (_, i) => `mv-${i}`)
    .filter((id) => target.ownerOf(id).id === 'shard-1')
    .slice(0, 5);
  expect(moving.length).toBe(5);
  const line = (orderId: string, n: number) => client.call('AddOrderLine', { orderId, lineId: `l${n}`, sku: 'S', quantity: 1, unitPriceCents: '100' });
  for (const id of moving) for (let n = 1; n <= 3; n++) await line(id, n);

  const errors: string[] = [];
  const out: Output = { tty: false, line: () => {}, error: (t) => errors.push(t) };
  expect(await ringCommand(['add', 'shard-1', '--address', cluster.shard('shard-1').address], { RING_DATABASE_URL: cluster.ringUrl }, out), errors.join('\n')).toBe(0);
  for (const id of moving) for (let n = 4; n <= 5; n++) await line(id, n);

  const sub = subscribe(cluster.routerAddress);
  try {
    await sub.until(() => sub.caughtUp(), 60_000, 'caught_up');
    const lines = sub.events.filter((e) => e.aggregateType === 'order-lines');
    expect(lines).toHaveLength(25);
    expect(checkDelivery(sub.events, undefined)).toEqual([]);
    for (const id of moving) {
      const stream = lines.filter((e) => e.aggregateId === id);
      expect(stream.map((e) => `${e.version}@${e.shardId}`)).toEqual(['1@shard-0', '2@shard-0', '3@shard-0', '4@shard-1', '5@shard-1']);
    }
  } finally {
    sub.close();
  }
}, 180_000);
