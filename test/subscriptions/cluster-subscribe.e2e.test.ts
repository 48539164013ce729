/**
 * Subscriptions through the router, with real processes: every shard's feed
 * merged, resumable from a checkpoint, and each stream in order and complete
 * while shards join and leave the ring under load (I11, I12).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ringCommand, type Output } from '../../cli/ring.js';
import { RingView } from '../../src/ring/index.js';
import { decodeCheckpoint } from '../../src/subscriptions/position.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';
import { startLoad } from '../support/ledger.js';
import { subscribe } from '../support/subscriber.js';
import { freePort } from '../support/postgres-process.js';
import { checkDelivery } from './support.js';

let cluster: Cluster;
let client: Clients;
let routerMetrics: string;

async function ring(args: string[]): Promise<void> {
  const errors: string[] = [];
  const out: Output = { tty: false, line: () => {}, error: (t) => errors.push(t) };
  const code = await ringCommand(args, { RING_DATABASE_URL: cluster.ringUrl }, out);
  expect(code, errors.join('\n')).toBe(0);
}

beforeAll(async () => {
  routerMetrics = `127.0.0.1:${await freePort()}`;
  cluster = await startCluster({ shards: 3, spares: 1, routerEnv: { METRICS_ADDRESS: routerMetrics } });
  client = connect(cluster.routerAddress);
}, 120_000);

afterAll(async () => {
  client?.close();
  await cluster?.close();
});

describe('Subscribe through the router', () => {
  it('merges every shard, resumes after a checkpoint, and filters', async () => {
    for (let i = 0; i < 30; i++) await client.call('PlaceOrder', placeOrder(`m${i}`));
    const owners = new Set(Array.from({ length: 30 }, (_, i) => cluster.ownerOf(`m${i}`)));
    expect(owners.size).toBe(3);

    const all = subscribe(cluster.routerAddress);
    await all.until(() => all.caughtUp(), 30_000, 'caught_up');
    expect(all.events).toHaveLength(30);
    expect(new Set(all.events.map((e) => e.shardId))).toEqual(owners);
    const at = all.events[14]!.checkpoint;
    expect([...decodeCheckpoint(at).keys()].sort()).toEqual(['shard-0', 'shard-1', 'shard-2']);

    await client.call('AddOrderLine', { orderId: 'm3', lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '100' });
    await all.until(() => all.events.length === 31, 10_000, 'the live event');
    all.close();

    const resumed = subscribe(cluster.routerAddress, { from: at });
    await resumed.until(() => resumed.caughtUp(), 30_000, 'caught_up after resuming');
    // No global order across shards: the same events after the checkpoint, none before it.
    expect(resumed.events.map((e) => e.eventId).sort()).toEqual(
      all.events
        .slice(15)
        .map((e) => e.eventId)
        .sort(),
    );
    expect(new Set([...all.events.slice(0, 15), ...resumed.events].map((e) => e.eventId)).size).toBe(31);
    expect(resumed.events.length).toBe(16);
    resumed.close();

    const lines = subscribe(cluster.routerAddress, { aggregateTypes: ['order-lines'] });
    await lines.until(() => lines.caughtUp(), 30_000);
    expect(lines.events.map((e) => e.streamId)).toEqual(['order-lines-m3']);
    lines.close();
  });

  it('gives live subscribers with the same filter one call per shard, and each still gets every event', async () => {
    const followers = async () => {
      const text = await (await fetch(`http://${routerMetrics}/metrics`)).text();
      return Number(/^shardwrite_router_shared_feed_followers (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    const a = subscribe(cluster.routerAddress, { from: 'end' });
    const b = subscribe(cluster.routerAddress, { from: 'end' });
    try {
      await a.until(() => a.caughtUp() && b.caughtUp(), 30_000, 'caught up');
      // Each live batch lets a subscriber's follower of that shard move onto the shared call.
      let n = 0;
      for (const end = Date.now() + 30_000; (await followers()) < 6;) {
        if (Date.now() > end) throw new Error(`not every follower moved onto a shared call: ${await followers()} of 6`);
        await client.call('PlaceOrder', placeOrder(`sh${n++}`));
      }
      for (let i = 0; i < 30; i++) await client.call('PlaceOrder', placeOrder(`sh${n++}`));
      const ids = (sub: typeof a) => sub.events.map((e) => e.streamId).sort();
      await a.until(() => a.events.length === n && b.events.length === n, 20_000, `${n} events each`);
      expect(ids(a)).toEqual(ids(b));
      expect(new Set(ids(a)).size).toBe(n);
    } finally {
      a.close();
      b.close();
    }
  });

  it('keeps each stream in order and complete while a shard joins and another leaves under load', async () => {
    const fromStart = subscribe(cluster.routerAddress);
    const fromEnd = subscribe(cluster.routerAddress, { from: 'end' });
    await fromEnd.until(() => fromEnd.caughtUp(), 30_000);
    const view = () => cluster.ringStore.current().then((doc) => new RingView(doc!));
    let ringView = await view();
    const run = startLoad({ target: cluster.routerAddress, prefix: 'mv', clients: 32, ordersPerClient: 4, deadlineMs: 3000, ownerOf: (id) => ringView.ownerOf(id).id });
    await new Promise((r) => setTimeout(r, 1500));
    await ring(['add', 'shard-3', '--address', cluster.shard('shard-3').address]);
    ringView = await view();
    await new Promise((r) => setTimeout(r, 1500));
    await ring(['remove', 'shard-1']);
    ringView = await view();
    await new Promise((r) => setTimeout(r, 1000));
    const ledger = await run.stop();
    expect(ledger.acks.length).toBeGreaterThan(100);

    const acked = ledger.acks.length;
    for (const sub of [fromStart, fromEnd]) {
      await sub
        .until(
          () =>
            checkDelivery(
              sub.events.filter((e) => e.streamId.includes('-mv-')),
              ledger,
            ).length === 0,
          60_000,
          `all ${acked} acknowledged commands delivered`,
        )
        .catch(() => {});
    }
    const late = subscribe(cluster.routerAddress);
    await late.until(() => late.caughtUp(), 60_000, 'a subscriber from the beginning after the moves');
    try {
      for (const [name, sub] of [
        ['from the beginning', fromStart],
        ['from the end', fromEnd],
        ['started after the moves', late],
      ] as const) {
        const moved = sub.events.filter((e) => e.streamId.includes('-mv-'));
        const violations = checkDelivery(moved, ledger);
        for (const v of violations.slice(0, 3)) {
          const stream = v.split(':')[0]!;
          console.log(
            name,
            v,
            moved
              .filter((e) => e.streamId === stream)
              .map((e) => `v${e.version}@${e.shardId}`)
              .join(' '),
          );
        }
        expect(violations.slice(0, 10), name).toEqual([]);
        expect(checkDelivery(sub.events, undefined).slice(0, 10), name).toEqual([]);
      }
      // The moves really moved streams that were being written.
      const shardsPerStream = new Map<string, Set<string>>();
      for (const e of late.events) {
        const s = shardsPerStream.get(e.streamId) ?? new Set<string>();
        s.add(e.shardId);
        shardsPerStream.set(e.streamId, s);
      }
      expect([...shardsPerStream.values()].filter((s) => s.size > 1).length).toBeGreaterThan(0);
    } finally {
      fromStart.close();
      fromEnd.close();
      late.close();
    }
  }, 240_000);
});
