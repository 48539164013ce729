import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/index.js';
import { FEED_SESSION_OPTIONS, PAGE_SQL, PgFeedReader } from '../../src/store/pg-feed-reader.js';
import { START, comparePositions, type ShardPosition } from '../../src/subscriptions/position.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

const insert = (client: pg.ClientBase, streamId: string, version: number) =>
  client.query(`INSERT INTO events (stream_id, version, type, schema_version, data, metadata) VALUES ($1, $2, 'Happened', 1, '{}', '{}') RETURNING position::text`, [streamId, version]);

describe('the feed reader (I11: never passes an event that can still become visible)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let feed: PgFeedReader;

  beforeAll(async () => {
    db = await createTestDatabase('sw_feed');
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 6 });
    feed = new PgFeedReader({ connectionString: db.url }); // its own pool, planned as a shard's is
  });
  afterAll(async () => {
    await feed.close();
    await pool.end();
    await db.drop();
  });

  async function readAll(after: ShardPosition): Promise<{ streamId: string; version: number; at: ShardPosition }[]> {
    const out = [];
    for (let at = after; ;) {
      const page = await feed.page(at, 2);
      if (page.length === 0) return out;
      out.push(...page);
      at = page[page.length - 1]!.at;
    }
  }

  /** Other databases' transactions on the same server hold the horizon back for a moment: wait for `n` rows. */
  async function readSettled(after: ShardPosition, n: number) {
    for (let i = 0; ; i++) {
      const rows = await readAll(after);
      if (rows.length >= n || i === 200) return rows;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('stops in front of a transaction that took a lower position and commits after a later one', async () => {
    const early = await pool.connect();
    const late = await pool.connect();
    try {
      const before = await feed.tail();
      await early.query('BEGIN');
      const low = await insert(early, 'early', 1); // takes the lower position
      await late.query('BEGIN');
      const high = await insert(late, 'late', 1);
      expect(BigInt(low.rows[0].position)).toBeLessThan(BigInt(high.rows[0].position));
      await late.query('COMMIT'); // visible first, at the higher position

      // A reader following positions alone would now deliver 'late' and pass 'early' for good.
      expect(await readAll(before)).toEqual([]);
      expect(await feed.tail()).toEqual(before);

      await early.query('COMMIT');
      const seen = await readSettled(before, 2);
      expect(seen.map((e) => e.streamId)).toEqual(['early', 'late']);
      expect(comparePositions(seen[0]!.at, seen[1]!.at)).toBeLessThan(0);
      expect(comparePositions(await feed.tail(), seen[1]!.at)).toBeGreaterThanOrEqual(0);
    } finally {
      early.release();
      late.release();
    }
  });

  it('orders by transaction, so an event committed later never lands behind a position already passed', async () => {
    const first = await pool.connect();
    const second = await pool.connect();
    try {
      const before = await feed.tail();
      // `first` takes its transaction id now but writes its event last (the higher position).
      await first.query('BEGIN');
      await first.query('SELECT pg_current_xact_id()');
      await second.query('BEGIN');
      await insert(second, 's2', 1);
      await second.query('COMMIT');
      expect(await readAll(before)).toEqual([]);
      await insert(first, 's1', 1);
      await first.query('COMMIT');
      const seen = await readSettled(before, 2);
      expect(seen.map((e) => e.streamId)).toEqual(['s1', 's2']);
      // Position order alone would have said s2 first.
      expect(seen[0]!.at.position).toBeGreaterThan(seen[1]!.at.position);
    } finally {
      first.release();
      second.release();
    }
  });

  it('reads a rolled-back transaction as nothing and moves on', async () => {
    const c = await pool.connect();
    try {
      const before = await feed.tail();
      await c.query('BEGIN');
      await insert(c, 'gone', 1);
      await c.query('ROLLBACK');
      await insert(c, 'kept', 1);
      expect((await readSettled(before, 1)).map((e) => e.streamId)).toEqual(['kept']);
    } finally {
      c.release();
    }
  });

  it('keeps serving events a rebalance archived, in their place', async () => {
    const before = await feed.tail();
    await insert(pool as unknown as pg.ClientBase, 'archived', 1);
    await insert(pool as unknown as pg.ClientBase, 'stays', 1);
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('shardwrite.rebalance', 'on', true)`);
      await c.query(
        `WITH gone AS (DELETE FROM events WHERE stream_id = 'archived'
           RETURNING position, stream_id, version, type, schema_version, data, metadata, recorded_at, tx, event_id, origin_shard, origin_tx, origin_position)
         INSERT INTO moved_events SELECT * FROM gone`,
      );
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    expect((await readSettled(before, 2)).map((e) => e.streamId)).toEqual(['archived', 'stays']);
    expect((await readAll(START)).length).toBeGreaterThanOrEqual(5);
  });

  it('pages by two index range scans under the cached generic plan, however the store grew after the plan was made', async () => {
    interface PlanNode {
      'Node Type': string;
      'Actual Rows': number;
      'Actual Loops': number;
      'Index Cond'?: string;
      Plans?: PlanNode[];
    }
    const flatten = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(flatten)];
    const session = new pg.Client({ connectionString: db.url, options: FEED_SESSION_OPTIONS });
    await session.connect();
    try {
      await session.query('ANALYZE events');
      await session.query(`PREPARE page(xid8, bigint, int) AS ${PAGE_SQL}`);
      const explain = async (after: ShardPosition) =>
        flatten((await session.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page('${after.tx}', ${after.position}, 100)`)).rows[0]!['QUERY PLAN'][0].Plan);
      await explain(START); // the plan is made now, while the store holds a handful of rows
      await pool.query(`INSERT INTO events (stream_id, version, type, schema_version, data, metadata) SELECT 'grown-' || g, 1, 'Happened', 1, '{}', '{}' FROM generate_series(1, 20000) g`);
      await pool.query('ANALYZE events');
      for (const after of [START, await feed.tail()]) {
        const nodes = await explain(after);
        expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan');
        expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
        // The cached generic plan (its conditions name the parameters), made before the store grew.
        const scans = nodes.filter((n) => n['Node Type'] === 'Index Scan');
        expect(scans).toHaveLength(2);
        for (const scan of scans) expect(scan['Index Cond']).toContain('$1');
        // A page of 100 touches about 100 rows per table, never the table.
        for (const n of nodes) expect(n['Actual Rows'] * n['Actual Loops']).toBeLessThanOrEqual(101);
      }
    } finally {
      await session.end();
    }
  });
});
