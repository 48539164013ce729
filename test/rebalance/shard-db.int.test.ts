/**
 * What a rebalance does to shard stores, statement by statement, against real
 * PostgreSQL: copies carry everything a stream needs and repeat harmlessly,
 * never interleave with a writer batch, and old copies go only when sealed
 * for the move.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardDb, copyItem, type CopyItem } from '../../src/rebalance/index.js';
import { GroupCommitWriter, PgEventReader, PgSnapshotStore, migrate } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

let source: TestDatabase;
let target: TestDatabase;
let src: ShardDb;
let dst: ShardDb;
let srcPool: pg.Pool;
let dstPool: pg.Pool;
const writers: GroupCommitWriter[] = [];

const entry = (streamId: string, expectedVersion: number, commandId: string, events = 1) => ({
  streamId,
  aggregateType: 'order-lines',
  aggregateId: streamId.replace('order-lines-', ''),
  baseVersion: expectedVersion,
  events: Array.from({ length: events }, (_, i) => ({ type: 'Tested', schemaVersion: 1, data: { n: expectedVersion + i + 1, text: 'ünïcode ✓' }, metadata: { command_id: commandId } })),
  commands: [{ commandId, eventCount: events }],
});

async function rows(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<unknown[]> {
  return (await pool.query(sql, params)).rows;
}

beforeAll(async () => {
  [source, target] = await Promise.all([createTestDatabase('sw_rb_src'), createTestDatabase('sw_rb_dst')]);
  await Promise.all([migrate(source.url), migrate(target.url)]);
  src = new ShardDb('shard-0', source.url);
  dst = new ShardDb('shard-3', target.url);
  srcPool = new pg.Pool({ connectionString: source.url, max: 3 });
  dstPool = new pg.Pool({ connectionString: target.url, max: 3 });
});

afterAll(async () => {
  for (const w of writers) await w.close();
  await Promise.all([src?.close(), dst?.close(), srcPool?.end(), dstPool?.end()]);
  await Promise.all([source?.drop(), target?.drop()]);
});

function writer(url: string): GroupCommitWriter {
  const w = new GroupCommitWriter({ connectionString: url, epoch: () => 1 });
  writers.push(w);
  return w;
}

async function listed(streamId: string) {
  for await (const page of src.listStreams(2)) {
    const row = page.find((r) => r.streamId === streamId);
    if (row) return row;
  }
  throw new Error(`${streamId} not listed`);
}

async function copy(item: CopyItem): Promise<number> {
  return dst.write([item], await src.read([item]));
}

describe('a rebalance on shard stores', () => {
  it('copies a stream with its command ids and latest snapshot, exactly, and a repeat copies nothing', async () => {
    const s = 'order-lines-copy-1';
    const w = writer(source.url);
    await w.append(entry(s, 0, 'c1', 2));
    await w.append(entry(s, 2, 'c2'));
    await new PgSnapshotStore(srcPool).save({ streamId: s, aggregateType: 'order-lines', version: 2, schemaVersion: 3, state: { b: 1, a: 2 } });

    const first = copyItem(await listed(s), undefined)!;
    expect(first).toMatchObject({ from: 0, to: 3 });
    expect(await copy(first)).toBe(3);
    const cols = 'stream_id, version, type, schema_version, data, metadata, recorded_at';
    expect(await rows(dstPool, `SELECT ${cols} FROM events WHERE stream_id = $1 ORDER BY version`, [s])).toEqual(
      await rows(srcPool, `SELECT ${cols} FROM events WHERE stream_id = $1 ORDER BY version`, [s]),
    );
    expect(await rows(dstPool, 'SELECT * FROM command_results WHERE stream_id = $1 ORDER BY command_id', [s])).toEqual(
      await rows(srcPool, 'SELECT * FROM command_results WHERE stream_id = $1 ORDER BY command_id', [s]),
    );
    // The snapshot's JSON text survives byte for byte (key order included).
    expect(await rows(dstPool, 'SELECT version, schema_version, state::text FROM snapshots WHERE stream_id = $1', [s])).toEqual([{ version: '2', schema_version: 3, state: '{"b":1,"a":2}' }]);
    expect(await rows(dstPool, 'SELECT aggregate_type, aggregate_id, version, moved_at_epoch FROM streams WHERE stream_id = $1', [s])).toEqual([
      { aggregate_type: 'order-lines', aggregate_id: 'copy-1', version: '3', moved_at_epoch: null },
    ]);
    // The new owner answers from the copy: a repeated command id is found there.
    const reader = new PgEventReader(dstPool);
    expect(await reader.findCommands([{ streamId: s, commandId: 'c1' }])).toEqual([{ streamId: s, commandId: 'c1', firstVersion: 1, lastVersion: 2 }]);

    expect(await copy(first)).toBe(0);
    // More events at the old owner: the next pass copies only those, from what the new owner holds.
    await w.append(entry(s, 3, 'c3'));
    const held = (await dst.held([s])).get(s)!;
    const next = copyItem(await listed(s), held)!;
    expect(next).toMatchObject({ from: 3, to: 4, purge: false });
    expect(await copy(next)).toBe(1);
    expect((await dst.held([s], true)).get(s)).toEqual({ version: 4, sealed: false, events: 4, maxVersion: 4 });
  });

  it('waits for a writer batch in flight on the new owner before copying, so positions keep commit order there', async () => {
    const s = 'order-lines-copy-2';
    await writer(source.url).append(entry(s, 0, 'd1'));
    const item = copyItem(await listed(s), undefined)!;
    const payload = await src.read([item]);
    const batch = await dstPool.connect();
    try {
      // What the group-commit writer's statement holds while it runs.
      await batch.query('BEGIN');
      await batch.query('SELECT epoch FROM shard_fence WHERE id FOR SHARE');
      await batch.query(`INSERT INTO events (stream_id, version, type, schema_version, data, metadata) VALUES ('order-lines-local', 1, 'Tested', 1, '{}', '{}')`);
      let done = false;
      const copying = dst.write([item], payload).then(() => (done = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(done).toBe(false);
      await batch.query('COMMIT');
      await copying;
    } finally {
      batch.release();
    }
    const order = await rows(dstPool, `SELECT stream_id FROM events WHERE stream_id IN ($1, 'order-lines-local') ORDER BY position`, [s]);
    expect(order).toEqual([{ stream_id: 'order-lines-local' }, { stream_id: s }]);
  });

  it('starts over on a sealed copy the new owner kept from an earlier move, and never copies over a newer live one', async () => {
    const s = 'order-lines-copy-3';
    await writer(source.url).append(entry(s, 0, 'e1', 2));
    // A leftover: the stream lived here once, was moved away at epoch 1 and never cleaned up.
    await dstPool.query(`INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version, moved_at_epoch) VALUES ($1, 'order-lines', 'copy-3', 5, 1)`, [s]);
    await dstPool.query(`INSERT INTO events (stream_id, version, type, schema_version, data, metadata) SELECT $1, v, 'Old', 1, '{}', '{}' FROM generate_series(1, 5) v`, [s]);
    const item = copyItem(await listed(s), (await dst.held([s])).get(s))!;
    expect(item).toMatchObject({ from: 0, to: 2, purge: true });
    await copy(item);
    expect(await rows(dstPool, 'SELECT version, type FROM events WHERE stream_id = $1 ORDER BY version', [s])).toEqual([
      { version: '1', type: 'Tested' },
      { version: '2', type: 'Tested' },
    ]);
    expect(copyItem({ ...(await listed(s)), version: 1 }, { version: 2, sealed: false })).toBeUndefined();
  });

  it('deletes old copies only when they are sealed for the move, with their events, command ids and snapshots', async () => {
    const [moved, kept] = ['order-lines-gone', 'order-lines-stays'];
    const w = writer(source.url);
    await Promise.all([w.append(entry(moved, 0, 'f1')), w.append(entry(kept, 0, 'f2'))]);
    await new PgSnapshotStore(srcPool).save({ streamId: moved, aggregateType: 'order-lines', version: 1, schemaVersion: 1, state: {} });
    // Not sealed yet: nothing goes.
    expect(await src.deleteSealed([moved, kept], 2)).toBe(0);
    expect(await src.seal([moved], 2)).toBe(1);
    expect(await src.seal([moved], 2)).toBe(0);
    // Sealed at another epoch: still nothing.
    expect(await src.deleteSealed([moved], 3)).toBe(0);
    expect(await src.deleteSealed([moved, kept], 2)).toBe(1);
    for (const table of ['streams', 'events', 'command_results', 'snapshots']) {
      expect(await rows(srcPool, `SELECT stream_id FROM ${table} WHERE stream_id IN ($1, $2)`, [moved, kept]), table).toEqual(table === 'snapshots' ? [] : [{ stream_id: kept }]);
    }
  });

  it('finds the streams changed after a position, which is how the last copy finds what moved since the previous one', async () => {
    const w = writer(source.url);
    await w.append(entry('order-lines-old', 0, 'g1'));
    const position = await src.maxPosition();
    await w.append(entry('order-lines-new', 0, 'g2'));
    await w.append(entry('order-lines-old', 1, 'g3'));
    const changed = await src.changedSince(position, 2);
    expect(changed.map((c) => [c.streamId, c.version]).sort()).toEqual([
      ['order-lines-new', 1],
      ['order-lines-old', 2],
    ]);
  });
});
