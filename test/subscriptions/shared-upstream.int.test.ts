/**
 * The router's shared feeds, against a real shard: live followers with the
 * same filter and credentials move onto one call per shard at the position
 * they reached, and one that falls behind leaves it for a call of its own —
 * every event still arrives once, in the shard's order.
 */
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { ShardFollower, FOLLOWER_QUEUE_HIGH } from '../../router/subscriptions/shard-follower.js';
import { SharedUpstreams } from '../../router/subscriptions/shared-upstream.js';
import { feedApi } from '../../src/grpc/proto.js';
import { createLogger } from '../../src/observability/logger.js';
import { ALL, parseFilter } from '../../src/subscriptions/filter.js';
import { START, comparePositions, parsePosition } from '../../src/subscriptions/position.js';
import type { ShardFeedClient } from '../../src/generated/shardwrite/internal/v1/ShardFeed.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';

const logger = createLogger('test-router', 'silent');
let db: TestDatabase;
let shard: RunningShard;
let client: Clients;
let feedClient: ShardFeedClient;
let orders = 0;

beforeAll(async () => {
  db = await createTestDatabase('sw_shared_up');
  const config = loadShardConfig({ SHARDWRITE_INSECURE: 'true', DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', SHARD_ID: 'shard-7' });
  shard = await startShard(config, { logger: createLogger('test-shard', 'silent') });
  client = connect(shard.address);
  feedClient = new (feedApi().shardwrite.internal.v1.ShardFeed)(shard.address, grpc.credentials.createInsecure());
  await place(20);
});

afterAll(async () => {
  feedClient?.close();
  client?.close();
  await shard?.close();
  await db?.drop();
});

async function place(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await client.call('PlaceOrder', placeOrder(`su${++orders}`));
}

/** A follower from the beginning that takes what arrives unless held, and records its events' positions. */
function follower(upstreams: SharedUpstreams, filter = ALL) {
  const seen: string[] = [];
  const state = { held: false, caughtUp: false };
  const drain = () => {
    if (state.held) return;
    for (let item = f.take(); item !== undefined; item = f.take()) {
      if (item.event) seen.push(item.event.position);
      if (item.caughtUp) state.caughtUp = true;
    }
  };
  const f: ShardFollower = new ShardFollower('shard-7', () => feedClient, filter, { after: START }, undefined, drain, logger, upstreams);
  return { f, seen, state, drain };
}

/** Each position once, in the shard's feed order. */
function inOrder(positions: string[]): boolean {
  for (let i = 1; i < positions.length; i++) if (comparePositions(parsePosition(positions[i - 1]!), parsePosition(positions[i]!)) >= 0) return false;
  return true;
}

async function eventually(check: () => boolean, what: string, work?: () => Promise<void>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    if (work) await work();
    else await new Promise((r) => setTimeout(r, 20));
  }
}

describe('shared feeds of the router', () => {
  it('moves live followers with the same filter onto one call, with nothing skipped or repeated', async () => {
    const upstreams = new SharedUpstreams(logger);
    const a = follower(upstreams);
    const b = follower(upstreams);
    const other = follower(upstreams, parseFilter({ aggregateTypes: ['order-lines'], eventTypes: [] }, undefined));
    try {
      await eventually(() => a.state.caughtUp && b.state.caughtUp && other.state.caughtUp, 'caught up');
      // Live: each new batch (of the own call or of the shared feed) is a chance to join at the position reached.
      await eventually(
        () => a.f.shared && b.f.shared,
        'both on the shared feed',
        () => place(1),
      );
      // A restart (its shard left the ring) puts a follower back on a call of its own, after what it received.
      const joined = upstreams.stats().consumers;
      b.f.restart();
      expect(b.f.shared).toBe(false);
      expect(upstreams.stats().consumers).toBe(joined - 1);
      await place(10);
      const total = orders;
      await eventually(() => a.seen.length === total && b.seen.length === total, `${total} events each`);
      expect(a.seen).toEqual(b.seen);
      expect(inOrder(a.seen)).toBe(true);
      expect(new Set(a.seen).size).toBe(total);
      // One shared feed per filter: the follower of another filter is on a feed of its own.
      await eventually(
        () => other.f.shared,
        'the other filter on its own shared feed',
        () => place(1),
      );
      expect(upstreams.stats()).toEqual({ feeds: 2, consumers: 3 });
    } finally {
      for (const x of [a, b, other]) x.f.close();
      upstreams.close();
    }
  });

  it('lets a follower that falls behind the shared feed read its own call again, then rejoin', async () => {
    const upstreams = new SharedUpstreams(logger);
    const fast = follower(upstreams);
    const slow = follower(upstreams);
    try {
      await eventually(() => fast.state.caughtUp && slow.state.caughtUp, 'caught up');
      await eventually(
        () => fast.f.shared && slow.f.shared,
        'both on the shared feed',
        () => place(1),
      );
      slow.state.held = true;
      // More than a follower may hold, written at once (the live tail reads what others insert too).
      const before = orders;
      const n = FOLLOWER_QUEUE_HIGH + 2000;
      const sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
      await sql.query(
        `INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
         SELECT 'order-header-bulk-' || g, 1, 'OrderPlaced', 1, '{"customerId":"c"}'::jsonb, '{}'::jsonb FROM generate_series(1, $1::int) g`,
        [n],
      );
      await sql.end();
      await eventually(() => fast.seen.length === before + n, 'the fast follower got everything');
      expect(slow.f.shared).toBe(false); // it left the shared feed instead of holding it back
      expect(fast.f.shared).toBe(true);
      slow.state.held = false;
      slow.drain();
      await eventually(() => slow.seen.length === before + n, 'the slow follower got everything from its own call');
      await eventually(
        () => slow.f.shared,
        'the slow follower back on the shared feed',
        () => place(1),
      );
      await place(5);
      await eventually(() => slow.seen.length === fast.seen.length && fast.seen.length === before + n + (orders - before), 'the same events');
      expect(slow.seen).toEqual(fast.seen);
      expect(inOrder(slow.seen)).toBe(true);
      expect(new Set(slow.seen).size).toBe(slow.seen.length);
    } finally {
      fast.f.close();
      slow.f.close();
      upstreams.close();
    }
  });
});
