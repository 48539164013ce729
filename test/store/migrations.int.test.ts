import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { bumpFence, migrate, MIGRATIONS } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { expectRejection } from '../support/expect-error.js';

describe('migrate', () => {
  const databases: TestDatabase[] = [];
  const fresh = async (): Promise<TestDatabase> => {
    const db = await createTestDatabase('sw_migrate');
    databases.push(db);
    return db;
  };

  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  it('applies every migration once and records it, and a second run is a no-op', async () => {
    const db = await fresh();
    const latest = MIGRATIONS.map((m) => m.version);

    expect(await migrate(db.url)).toEqual(latest);
    expect(await migrate(db.url)).toEqual([]);

    const pool = new pg.Pool({ connectionString: db.url });
    try {
      expect(await migrate(pool)).toEqual([]);
      const recorded = await pool.query('SELECT version FROM schema_migrations ORDER BY version');
      expect(recorded.rows.map((r) => r.version)).toEqual(latest);
      const tables = await pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
      expect(tables.rows.map((r) => r.table_name)).toEqual(['command_results', 'events', 'moved_events', 'schema_migrations', 'shard_fence', 'snapshots', 'store_identity', 'streams']);
      const fence = await pool.query('SELECT epoch FROM shard_fence');
      expect(fence.rows).toEqual([{ epoch: '0' }]);
    } finally {
      await pool.end();
    }
  });

  it('keeps events append-only: updates, deletes and truncation are refused, except a delete a rebalance declares', async () => {
    const db = await fresh();
    await migrate(db.url);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query(`INSERT INTO events (stream_id, version, type, schema_version, data, metadata) VALUES ('s', 1, 'T', 1, '{}', '{}')`);
      for (const sql of [`UPDATE events SET data = '{"x": 1}'`, 'DELETE FROM events', 'TRUNCATE events', `UPDATE moved_events SET data = '{}'`]) {
        await expect(c.query(sql), sql).rejects.toMatchObject({ code: '42501' });
      }
      expect((await c.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(1);
      await c.query('BEGIN');
      await c.query(`SELECT set_config('shardwrite.rebalance', 'on', true)`);
      await expect(c.query(`UPDATE events SET data = '{}'`)).rejects.toMatchObject({ code: '42501' });
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await c.query(`SELECT set_config('shardwrite.rebalance', 'on', true)`);
      await c.query('DELETE FROM events');
      await c.query('COMMIT');
      expect((await c.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('lets several processes migrate a fresh database at the same time', async () => {
    const db = await fresh();
    const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url), migrate(db.url)]);

    // Exactly one of them applied each migration; all of them succeeded.
    expect(results.flat().sort()).toEqual(MIGRATIONS.map((m) => m.version));
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      const fence = await pool.query('SELECT count(*)::int AS n FROM shard_fence');
      expect(fence.rows[0].n).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('refuses to continue when an applied migration was renamed in the code', async () => {
    const db = await fresh();
    await migrate(db.url);
    const renamed = MIGRATIONS.map((m) => ({ ...m, name: `${m.name} (edited)` }));
    await expectRejection(migrate(db.url, renamed), /was applied as/);
  });

  it('deletes the order-header snapshots of state schemas that held personal data, and no other snapshot', async () => {
    const db = await fresh();
    await migrate(
      db.url,
      MIGRATIONS.filter((m) => m.version < 9),
    );
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      // The rows of a store before migration 9.
      await sql.query(`INSERT INTO snapshots (stream_id, aggregate_type, version, schema_version, state) VALUES
        ('order-header-o1', 'order-header', 1, 2, '{"customerEmail":"ada@example.com"}'),
        ('order-header-o2', 'order-header', 1, 3, '{"customerId":"c"}'),
        ('order-lines-o1', 'order-lines', 1, 1, '{}')`);
      expect(await migrate(db.url)).toEqual([9]);
      const left = (await sql.query(`SELECT stream_id FROM snapshots ORDER BY stream_id`)).rows.map((r: { stream_id: string }) => r.stream_id);
      expect(left).toEqual(['order-header-o2', 'order-lines-o1']);
    } finally {
      await sql.end();
    }
  });

  it('bumpFence only ever raises the fence epoch', async () => {
    const db = await fresh();
    await migrate(db.url);
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      expect(await bumpFence(pool, 7)).toBe(7);
      expect(await bumpFence(pool, 3)).toBe(7);
      expect(await bumpFence(pool, 9)).toBe(9);
      await expectRejection(bumpFence(pool, -1), RangeError);
    } finally {
      await pool.end();
    }
  });
});
