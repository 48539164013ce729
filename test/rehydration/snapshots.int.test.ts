import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { AggregateLoader } from '../../src/pipeline/loader.js';
import { AggregateCache } from '../../src/pipeline/aggregate-cache.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { ADD, buildStack, count, tally, tallyV2, type Stack } from './support.js';
import { expectRejection } from '../support/expect-error.js';

let db: TestDatabase;
let stack: Stack;

beforeAll(async () => {
  db = await createTestDatabase('sw_snap');
  stack = await buildStack({ url: db.url, policy: { interval: 5 } });
});

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const newId = () => randomBytes(4).toString('hex');

async function snapshotRow(streamId: string): Promise<{ version: number; schema_version: number; state: unknown } | undefined> {
  const { rows } = await stack.pool.query('SELECT version::int AS version, schema_version, state FROM snapshots WHERE stream_id = $1', [streamId]);
  return rows[0];
}

async function add(id: string, n: number, extra: object = {}) {
  const out = await stack.pipeline.execute(ADD, { id, count: n, ...extra }, {});
  await stack.snapshotter.idle();
  return out;
}

describe('PostgreSQL snapshots', () => {
  it('snapshots once the events since the last snapshot reach the interval, even when a command jumps over a multiple of it', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    const seen: (number | undefined)[] = [];
    for (let i = 0; i < 4; i++) {
      await add(id, 3); // versions 3, 6, 9, 12: never a multiple of 5
      seen.push((await snapshotRow(stream))?.version);
    }
    expect(seen).toEqual([undefined, 6, 6, 12]);
    expect((await snapshotRow(stream))?.state).toEqual({ total: 12 });
  });

  it('snapshots on load when the load replayed at least the interval (no owner cache to count from)', async () => {
    const url = db.url;
    const uncached = await buildStack({ url, policy: { interval: 5 }, ownerCache: { maxEntries: 0 } });
    try {
      const id = newId();
      for (let i = 0; i < 4; i++) await uncached.pipeline.execute(ADD, { id, count: 2 }, {});
      await uncached.snapshotter.idle();
      // Loads saw 0, 2, 4, 6 events since the last snapshot: the one at 6 triggered it.
      expect((await snapshotRow(`tally-${id}`))?.version).toBe(6);
    } finally {
      await uncached.close();
    }
  });

  it('loads from the snapshot plus the events after it, and the result equals a full replay', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    for (let i = 0; i < 5; i++) await add(id, 4); // versions 4, 8, 12, 16, 20: snapshots at 8 and 16
    expect((await snapshotRow(stream))?.version).toBe(16);

    const cold = await stack.coldLoader().load(stream, tally);
    expect(cold).toMatchObject({ tier: 'snapshot', version: 20, replayed: 4, state: { total: 20 }, snapshotVersion: 16 });
    // Not replayed from version 1, so the command-id index is left to the store (the pipeline's contract).
    expect(cold.commandIds).toBeUndefined();
    const replayed = await new AggregateLoader(stack.reader, new AggregateCache()).load(stream, tally);
    expect(replayed).toMatchObject({ tier: 'replay', version: 20, state: cold.state });
    expect(replayed.commandIds).toBeInstanceOf(Map);
  });

  it('snapshots after a load slower than the slow-load threshold, whatever the interval', async () => {
    const slow = await buildStack({ url: db.url, policy: { interval: 1000, slowLoadMs: 0 } });
    try {
      const id = newId();
      await slow.pipeline.execute(ADD, { id, count: 3 }, {});
      await slow.snapshotter.idle();
      expect(await snapshotRow(`tally-${id}`)).toBeUndefined();
      await slow.coldLoader().load(`tally-${id}`, tally);
      await slow.snapshotter.idle();
      expect((await snapshotRow(`tally-${id}`))?.version).toBe(3);
    } finally {
      await slow.close();
    }
  });

  it('keeps a state exactly as it was taken, object key order included', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    // jsonb would hand this back as {"a":…,"zeta":…}; a decider iterating a record must see what replay built.
    const state = { zeta: 1, a: { y: [3, 1], b: 'x' }, l10: true, l9: false };
    await stack.snapshots.save({ streamId: stream, aggregateType: 'tally', version: 1, schemaVersion: 1, state });
    const read = await stack.snapshots.load(stream, { schemaVersion: 1 });
    expect(JSON.stringify(read.snapshot?.state)).toBe(JSON.stringify(state));
  });

  it('never overwrites a newer snapshot with an older one', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 10); // the policy snapshots version 10
    const base = { streamId: stream, aggregateType: 'tally', schemaVersion: 1 };
    expect((await stack.snapshots.save({ ...base, version: 8, state: { total: 8 } })).written).toBe(false);
    expect((await stack.snapshots.save({ ...base, version: 10, state: { total: 10 } })).written).toBe(false);
    await stack.pool.query('DELETE FROM snapshots WHERE stream_id = $1', [stream]);
    expect((await stack.snapshots.save({ ...base, version: 8, state: { total: 8 } })).written).toBe(true);
    expect((await stack.snapshots.save({ ...base, version: 4, state: { total: 4 } })).written).toBe(false);
    await Promise.all([3, 9, 5, 7, 6].map((version) => stack.snapshots.save({ ...base, version, state: { total: version } })));
    expect(await snapshotRow(stream)).toMatchObject({ version: 9, state: { total: 9 } });
    await expectRejection(stack.snapshots.save({ ...base, version: 11, state: {} }), /no version 11/);
  });

  it('skips a snapshot of another state schema, replays the stream, and counts it', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 7); // snapshot at 7, schema 1: { total: 7 }
    expect((await snapshotRow(stream))?.schema_version).toBe(1);
    const skippedBefore = await count(stack.metrics.snapshotsSkipped, { tier: 'postgres', reason: 'schema' });

    // The next release changed the state's shape; decoding { total } as { count, last } would be garbage.
    const loader = new AggregateLoader(stack.reader, new AggregateCache(), stack.metrics, { snapshots: stack.snapshots });
    const loaded = await loader.load(stream, tallyV2);
    expect(loaded).toMatchObject({ tier: 'replay', version: 7, replayed: 7, state: { count: 7, last: 7 } });
    expect(await count(stack.metrics.snapshotsSkipped, { tier: 'postgres', reason: 'schema' })).toBe(skippedBefore + 1);

    // And the other way round: a row written by a newer schema is not read by this one.
    await stack.pool.query(`UPDATE snapshots SET schema_version = 2, state = '{"count": 999, "last": 0}' WHERE stream_id = $1`, [stream]);
    const back = await stack.coldLoader().load(stream, tally);
    expect(back).toMatchObject({ tier: 'replay', state: { total: 7 } });
  });

  it('decides the same after every snapshot is deleted', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    for (let i = 0; i < 6; i++) await add(id, 3);
    const withSnapshots = await stack.coldLoader().load(stream, tally);
    expect(withSnapshots.tier).toBe('snapshot');
    await stack.pool.query('DELETE FROM snapshots');
    const without = await stack.coldLoader().load(stream, tally);
    expect(without).toMatchObject({ tier: 'replay', version: withSnapshots.version, state: withSnapshots.state });
  });

  it('logs and counts a failed snapshot write and never surfaces it to the command', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await stack.pool.query(`
      CREATE OR REPLACE FUNCTION sw_test_refuse_snapshot() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'snapshot storage is broken'; END $$;
      CREATE TRIGGER sw_test_refuse BEFORE INSERT OR UPDATE ON snapshots FOR EACH ROW EXECUTE FUNCTION sw_test_refuse_snapshot();`);
    try {
      const failedBefore = await count(stack.metrics.snapshotWrites, { outcome: 'failed' });
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await add(id, 3));
      expect(results.map((r) => r.version)).toEqual([3, 6, 9, 12]);
      expect(await count(stack.metrics.snapshotWrites, { outcome: 'failed' })).toBeGreaterThan(failedBefore);
      expect(stack.logs.some((l) => l.msg.startsWith('snapshot write failed') && l.streamId === stream)).toBe(true);
      expect(await snapshotRow(stream)).toBeUndefined();
    } finally {
      await stack.pool.query('DROP TRIGGER sw_test_refuse ON snapshots');
    }
    // Once the table works again the policy catches up.
    await add(id, 5);
    expect((await snapshotRow(stream))?.version).toBe(17);
  });

  it('replays from the events when the snapshot table cannot be read', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 6);
    await stack.pool.query('ALTER TABLE snapshots RENAME TO snapshots_away');
    try {
      const loaded = await stack.coldLoader().load(stream, tally);
      expect(loaded).toMatchObject({ tier: 'replay', version: 6, state: { total: 6 } });
      expect(await count(stack.metrics.snapshotsSkipped, { tier: 'postgres', reason: 'error' })).toBeGreaterThan(0);
    } finally {
      await stack.pool.query('ALTER TABLE snapshots_away RENAME TO snapshots');
    }
  });

  it('counts each load by tier with the events it replayed', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 5);
    await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    await stack.snapshotter.idle();
    const before = await count(stack.metrics.loads, { tier: 'memory' });
    await stack.loader.load(stream, tally);
    expect(await count(stack.metrics.loads, { tier: 'memory' })).toBe(before + 1);
    const snapBefore = await count(stack.metrics.loads, { tier: 'snapshot' });
    const sumBefore = (await stack.metrics.replayedEvents.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
    await stack.coldLoader().load(stream, tally);
    expect(await count(stack.metrics.loads, { tier: 'snapshot' })).toBe(snapBefore + 1);
    const sumAfter = (await stack.metrics.replayedEvents.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
    expect(sumAfter - sumBefore).toBe(1);
  });
});
