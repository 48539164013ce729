import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/index.js';
import { PgFeedReader } from '../../src/store/pg-feed-reader.js';
import { START, comparePositions, type ShardPosition } from '../../src/subscriptions/position.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

const insert = (client: pg.ClientBase, streamId: string, version: number) =>
  client.query(
    `INSERT INTO events (stream_id, version, type, schema_version, data, metadata) VALUES ($1, $2, 'Happened', 1, '{}', '{}') RETURNING position::text`,
    [streamId, version],
  );

describe('the feed reader (I11: never passes an event that can still become visible)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let feed: PgFeedReader;

  beforeAll(async () => {
    db = await createTestDatabase('sw_feed');
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 6 });
    feed = new PgFeedReader(pool);
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  async function readAll(after: ShardPosition): Promise<{ streamId: string; version: number; at: ShardPosition }[]> {
    const out = [];
    for (let at = after; ; ) {
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
    await pool.query(
      `WITH gone AS (DELETE FROM events WHERE stream_id = 'archived'
         RETURNING position, stream_id, version, type, schema_version, data, metadata, recorded_at, tx, event_id, origin_shard, origin_tx, origin_position)
       INSERT INTO moved_events SELECT * FROM gone`,
    );
    expect((await readSettled(before, 2)).map((e) => e.streamId)).toEqual(['archived', 'stays']);
    expect((await readAll(START)).length).toBeGreaterThanOrEqual(5);
  });
});
