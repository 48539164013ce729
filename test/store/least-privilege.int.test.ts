import { randomUUID } from 'node:crypto';
/**
 * The event store's least-privilege roles (migration 6), tried for real: a
 * login user in `shardwrite_shard` runs the hot path (append, snapshot, fence)
 * but cannot UPDATE, DELETE or TRUNCATE events, not even with the rebalance
 * setting the append-only triggers honour; a user in `shardwrite_rebalancer`
 * can clean up after a move.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { REBALANCER_ROLE, REBALANCE_SETTING, ROUTER_ROLE, SHARD_ROLE, bumpFence, migrate } from '../../src/store/index.js';
import { PgRingStore } from '../../src/ring/index.js';
import { migrateGroupSchema } from '../../router/consumer-groups/schema.js';
import { createTestDatabase, serverUrl, sqlState, withClient, type TestDatabase } from '../support/pg.js';
import { ADD, buildStack } from '../rehydration/support.js';

let db: TestDatabase;
let ringDb: TestDatabase;
const suffix = randomBytes(4).toString('hex');
const shardUser = `sw_shard_user_${suffix}`;
const rebalancerUser = `sw_rebalancer_user_${suffix}`;
const routerUser = `sw_router_user_${suffix}`;
const password = randomBytes(12).toString('hex');

function urlAs(user: string, on: TestDatabase = db): string {
  const u = new URL(on.url);
  u.username = user;
  u.password = password;
  return u.toString();
}

async function admin<T>(run: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl() });
  await c.connect();
  try {
    return await run(c);
  } finally {
    await c.end();
  }
}

const as = <T>(user: string, run: (c: pg.Client) => Promise<T>, on: TestDatabase = db): Promise<T> => withClient(urlAs(user, on), run);

beforeAll(async () => {
  db = await createTestDatabase('sw_roles');
  await migrate(db.url);
  await admin(async (c) => {
    await c.query(`CREATE ROLE ${shardUser} LOGIN PASSWORD '${password}' IN ROLE ${SHARD_ROLE}`);
    await c.query(`CREATE ROLE ${rebalancerUser} LOGIN PASSWORD '${password}' IN ROLE ${REBALANCER_ROLE}`);
    await c.query(`CREATE ROLE ${routerUser} LOGIN PASSWORD '${password}' IN ROLE ${ROUTER_ROLE}`);
  });
  ringDb = await createTestDatabase('sw_roles_ring');
  const owner = new PgRingStore({ connectionString: ringDb.url });
  await owner.migrate();
  await owner.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-0', address: 'shard-0.shard:50051' }] });
  await owner.close();
  const pool = new pg.Pool({ connectionString: ringDb.url, max: 1 });
  await migrateGroupSchema(pool);
  await pool.end();
});

afterAll(async () => {
  await db?.drop();
  await ringDb?.drop();
  await admin(async (c) => {
    await c.query(`DROP ROLE IF EXISTS ${shardUser}`);
    await c.query(`DROP ROLE IF EXISTS ${rebalancerUser}`);
    await c.query(`DROP ROLE IF EXISTS ${routerUser}`);
  });
});

describe('least-privilege roles of the event store', () => {
  it("let the shard's role check the schema and run the hot path: append, snapshot, raise the fence", async () => {
    expect(await migrate(urlAs(shardUser))).toEqual([]);
    const stack = await buildStack({ url: urlAs(shardUser), policy: { interval: 3 } });
    try {
      await stack.pipeline.execute(ADD, { id: 'a', count: 4, commandId: 'c1' }, {});
      await stack.pipeline.execute(ADD, { id: 'a', count: 1 }, {});
      await stack.snapshotter.idle();
      const { rows } = await stack.pool.query(`SELECT version::int AS v FROM snapshots WHERE stream_id = 'tally-a'`);
      expect(rows).toEqual([{ v: 4 }]);
    } finally {
      await stack.close();
    }
    expect(await as(shardUser, (c) => bumpFence(c, 3))).toBe(3);
  });

  it("refuse UPDATE, DELETE and TRUNCATE of events under the shard's role, even with the rebalance setting on", async () => {
    await as(shardUser, async (c) => {
      expect((await c.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(5);
      expect(await sqlState(c.query(`UPDATE events SET type = 'Forged'`))).toBe('42501');
      expect(await sqlState(c.query('DELETE FROM events'))).toBe('42501');
      expect(await sqlState(c.query('TRUNCATE events'))).toBe('42501');
      await c.query('BEGIN');
      await c.query('SELECT set_config($1, $2, true)', [REBALANCE_SETTING, 'on']);
      expect(await sqlState(c.query(`DELETE FROM events WHERE stream_id = 'tally-a'`))).toBe('42501');
      await c.query('ROLLBACK');
      expect(await sqlState(c.query('DELETE FROM command_results'))).toBe('42501');
      expect(await sqlState(c.query('UPDATE streams SET moved_at_epoch = 1'))).toBe('42501');
    });
    await admin(async () => {
      const check = new pg.Client({ connectionString: db.url });
      await check.connect();
      const { rows } = await check.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE type = 'Forged')::int AS forged FROM events`);
      await check.end();
      expect(rows[0]).toEqual({ n: 5, forged: 0 });
    });
  });

  it("let the rebalancer's role clean up a moved stream, and nobody's update an event", async () => {
    await as(rebalancerUser, async (c) => {
      expect(await sqlState(c.query(`UPDATE events SET type = 'Forged'`))).toBe('42501');
      await c.query('BEGIN');
      await c.query('SELECT set_config($1, $2, true)', [REBALANCE_SETTING, 'on']);
      expect((await c.query(`DELETE FROM events WHERE stream_id = 'tally-a'`)).rowCount).toBe(5);
      await c.query('ROLLBACK');
    });
  });
});

describe('least-privilege roles of the ring database', () => {
  it('let routers read the ring and keep consumer groups, but not write the ring nor read store URLs', async () => {
    const store = new PgRingStore({ connectionString: urlAs(routerUser, ringDb) });
    try {
      await store.migrate(); // checks the schema without CREATE
      expect((await store.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-9', address: 'x:1' }] })).shards[0]!.id).toBe('shard-0');
      expect(await store.shardAddresses()).toEqual(new Map([['shard-0', 'shard-0.shard:50051']]));
      await expect(store.publish({ epoch: 2, shards: [{ id: 'shard-0', address: 'evil:1' }] }, 1)).rejects.toMatchObject({ code: '42501' });
      await expect(store.stores()).rejects.toMatchObject({ code: '42501' });
    } finally {
      await store.close();
    }
    await as(
      routerUser,
      async (c) => {
        await c.query(`INSERT INTO consumer_groups (name, partition_count, aggregate_types, event_types) VALUES ('g', 4, '{}', '{}')`);
        expect(await sqlState(c.query('DELETE FROM ring_epochs'))).toBe('42501');
      },
      ringDb,
    );
  });

  it('let shards register their store (without a password) but not publish a ring; the rebalancer publishes', async () => {
    const shardStore = new PgRingStore({ connectionString: urlAs(shardUser, ringDb) });
    const rebalancerStore = new PgRingStore({ connectionString: urlAs(rebalancerUser, ringDb) });
    try {
      await shardStore.registerStore('shard-0', 'postgres://shard0:secret@db-0:5432/shardwrite', randomUUID());
      await expect(shardStore.publish({ epoch: 2, shards: [{ id: 'shard-0', address: 'evil:1' }] }, 1)).rejects.toMatchObject({ code: '42501' });
      expect((await rebalancerStore.stores()).get('shard-0')?.databaseUrl).toBe('postgres://shard0@db-0:5432/shardwrite');
      expect((await rebalancerStore.publish({ epoch: 2, shards: [{ id: 'shard-0', address: 'shard-0.shard:50051' }] }, 1)).epoch).toBe(2);
    } finally {
      await shardStore.close();
      await rebalancerStore.close();
    }
  });
});
