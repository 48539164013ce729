/**
 * The writer runs its batch statement under one cached generic plan, made from
 * guesses: 10 rows per unnest, and the tables' statistics of the moment the
 * plan was made. These tests make that plan at the worst moment — on a store
 * analyzed while it held a handful of rows — then grow the tables and run big
 * batches through it, counting the rows every plan node touched. A plan that
 * scans a table, or joins two of the batch's row sets in a nested loop, touches
 * rows in proportion to the table or to the square of the batch; the statement
 * must touch a bounded number per entry.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPEND_BATCH_SQL, APPEND_SESSION_SETTINGS, appendBatchValues, type SerializedEntry } from '../../src/store/append-batch-sql.js';
import { migrate } from '../../src/store/index.js';
// @ts-expect-error -- pg's own array literal encoding, untyped
import { prepareValue } from 'pg/lib/utils.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

/** Rows the tables hold once grown, after the plan was made. */
const GROWN = 20_000;
/** Rows a plan node may touch per batch entry, summed over the whole plan. */
const ROWS_PER_ENTRY = 40;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Join Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Every row each node produced or threw away, over all its loops; and the nodes, flattened. */
function touched(node: PlanNode): { rows: number; nodes: PlanNode[] } {
  const loops = node['Actual Loops'];
  let rows = (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * loops;
  const nodes = [node];
  for (const child of node.Plans ?? []) {
    const sub = touched(child);
    rows += sub.rows;
    nodes.push(...sub.nodes);
  }
  return { rows, nodes };
}

function entry(streamId: string, expectedVersion: number, commandId: string): SerializedEntry {
  return {
    entry: {
      streamId,
      aggregateType: 'order',
      aggregateId: streamId,
      baseVersion: expectedVersion,
      events: [{ type: 'Tested', schemaVersion: 1, data: { n: expectedVersion + 1 }, metadata: {} }],
      commands: [{ commandId, eventCount: 1 }],
    },
    data: [JSON.stringify({ n: expectedVersion + 1 })],
    metadata: ['{}'],
  };
}

const STATEMENT = 'append_batch';
const run = (batch: readonly SerializedEntry[]): pg.QueryConfig => ({ name: STATEMENT, text: APPEND_BATCH_SQL, values: appendBatchValues(batch, 0, undefined) });

describe('the append statement under its cached generic plan', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.url);
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(APPEND_SESSION_SETTINGS);
    // Statistics taken while the store is tiny, then the plan made from them,
    // as the writer makes it: a named statement of the extended protocol.
    await client.query(run([entry('seed', 0, 'seed-1')]));
    await client.query('ANALYZE streams; ANALYZE events; ANALYZE command_results');
    await client.query(run([entry('seed', 1, 'seed-2')]));
    // The store grows; the plan stays.
    await client.query(`
      INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version)
        SELECT 'grown-' || g, 'order', 'grown-' || g, 1 FROM generate_series(1, ${GROWN}) g;
      INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
        SELECT 'grown-' || g, 1, 'Tested', 1, '{}', '{}' FROM generate_series(1, ${GROWN}) g;
      INSERT INTO command_results (stream_id, command_id, first_version, last_version)
        SELECT 'grown-' || g, 'grown-cmd-' || g, 1, 1 FROM generate_series(1, ${GROWN}) g;`);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  for (const size of [64, 512]) {
    it(`touches a bounded number of rows per entry in a batch of ${size} new, advancing, duplicate and conflicting entries`, async () => {
      // A quarter each: new streams, streams advanced from version 1, repeated
      // command ids, and stale expected versions.
      const batch = Array.from({ length: size }, (_, i) => {
        const grown = `grown-${size * 10 + i}`;
        switch (i % 4) {
          case 0:
            return entry(`new-${size}-${i}`, 0, `new-cmd-${size}-${i}`);
          case 1:
            return entry(grown, 1, `next-cmd-${size}-${i}`);
          case 2:
            return entry(grown, 1, `grown-cmd-${size * 10 + i}`);
          default:
            return entry(grown, 5, `stale-cmd-${size}-${i}`);
        }
      });
      // The same prepared statement, run through SQL's EXECUTE to be explained.
      const literals = appendBatchValues(batch, 0, undefined).map((v) => client.escapeLiteral(String(prepareValue(v))));
      const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${STATEMENT}(${literals.join(', ')})`);
      const plan = (rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
      const { rows: rowsTouched, nodes } = touched(plan);

      const scans = nodes.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] !== 'shard_fence');
      expect(scans.map((n) => n['Relation Name'])).toEqual([]);
      expect(rowsTouched, `rows touched by the plan for ${size} entries`).toBeLessThanOrEqual(ROWS_PER_ENTRY * size);

      // And it did what it says: the new and advancing quarters appended.
      const appended = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM events WHERE stream_id LIKE 'new-${size}-%' OR (stream_id LIKE 'grown-%' AND version = 2 AND stream_id = ANY($1))`,
        [batch.map((b) => b.entry.streamId)],
      );
      expect(Number(appended.rows[0]!.n)).toBe(size / 2);
    });
  }
});
