import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, DuplicateCommandError, StoreUnavailableError, StreamMovingError, ValidationError, WrongShardError } from '../../src/errors.js';
import { bumpFence, GroupCommitWriter, migrate, PgEventReader, type AppendEntry, type AppendResult, type GroupCommitWriterOptions } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { expectRejection, expectThrow } from '../support/expect-error.js';

let counter = 0;
/** A stream id no other test uses. */
const newStream = (label = 's'): string => `order-${label}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

interface EntryOptions {
  events?: number;
  commandId?: string;
  data?: (i: number) => unknown;
}

function entry(streamId: string, expectedVersion: number, options: EntryOptions = {}): AppendEntry {
  const count = options.events ?? 1;
  return {
    streamId,
    aggregateType: 'order',
    aggregateId: streamId.replace(/^order-/, ''),
    baseVersion: expectedVersion,
    events: Array.from({ length: count }, (_, i) => ({
      type: 'Tested',
      schemaVersion: 1,
      data: options.data ? options.data(i) : { n: expectedVersion + i + 1 },
      metadata: { source: 'test' },
    })),
    commands: [{ commandId: options.commandId ?? `cmd-${streamId}-${expectedVersion}`, eventCount: count }],
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('GroupCommitWriter', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  const writers: GroupCommitWriter[] = [];
  const extraDatabases: TestDatabase[] = [];

  const newWriter = (options: Partial<GroupCommitWriterOptions> = {}, url = db.url): GroupCommitWriter => {
    const writer = new GroupCommitWriter({ connectionString: url, epoch: () => 0, ...options });
    writers.push(writer);
    return writer;
  };

  /** A database of its own, for tests that move the shard-wide fence. */
  const isolatedDatabase = async (): Promise<{ url: string; pool: pg.Pool }> => {
    const extra = await createTestDatabase('sw_writer_fence');
    extraDatabases.push(extra);
    await migrate(extra.url);
    const extraPool = new pg.Pool({ connectionString: extra.url, max: 3 });
    const dropDatabase = extra.drop.bind(extra);
    extra.drop = async () => {
      await extraPool.end();
      await dropDatabase();
    };
    return { url: extra.url, pool: extraPool };
  };

  const versions = async (streamId: string, on: pg.Pool = pool): Promise<number[]> => {
    const result = await on.query('SELECT version FROM events WHERE stream_id = $1 ORDER BY version', [streamId]);
    return result.rows.map((r) => Number(r.version));
  };
  const streamVersion = async (streamId: string, on: pg.Pool = pool): Promise<number | undefined> => {
    const result = await on.query('SELECT version FROM streams WHERE stream_id = $1', [streamId]);
    return result.rows[0] ? Number(result.rows[0].version) : undefined;
  };

  beforeAll(async () => {
    db = await createTestDatabase('sw_writer');
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 5 });
  });

  afterAll(async () => {
    for (const writer of writers) await writer.close().catch(() => {});
    await pool?.end();
    await db?.drop();
    for (const extra of extraDatabases) await extra.drop();
  });

  it('appends durably with contiguous versions and reports the new version and positions', async () => {
    const writer = newWriter();
    const s = newStream();
    const first = await writer.append(entry(s, 0, { events: 2 }));
    const second = await writer.append(entry(s, 2));
    const third = await writer.append(entry(s, 3, { events: 3 }));

    expect([first.version, second.version, third.version]).toEqual([2, 3, 6]);
    expect(await versions(s)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await streamVersion(s)).toBe(6);
    const positions = [...first.positions, ...second.positions, ...third.positions];
    const stored = await pool.query('SELECT position FROM events WHERE stream_id = $1 ORDER BY version', [s]);
    expect(stored.rows.map((r) => BigInt(r.position))).toEqual(positions);
    const commands = await pool.query('SELECT first_version, last_version FROM command_results WHERE stream_id = $1 ORDER BY first_version', [s]);
    expect(commands.rows.map((r) => [Number(r.first_version), Number(r.last_version)])).toEqual([
      [1, 2],
      [3, 3],
      [4, 6],
    ]);
  });

  it('records first and last version of each command when one entry carries several commands', async () => {
    const writer = newWriter();
    const s = newStream();
    const base = entry(s, 0, { events: 4 });
    await writer.append({
      ...base,
      commands: [{ commandId: 'a', eventCount: 1 }, { eventCount: 1 }, { commandId: 'c', eventCount: 2 }],
    });
    const commands = await pool.query('SELECT command_id, first_version, last_version FROM command_results WHERE stream_id = $1 ORDER BY command_id', [s]);
    expect(commands.rows).toEqual([
      { command_id: 'a', first_version: '1', last_version: '1' },
      { command_id: 'c', first_version: '3', last_version: '4' },
    ]);
  });

  it('commits every other entry of a batch that holds one conflicting entry', async () => {
    const writer = newWriter();
    const conflicted = newStream('conflicted');
    await writer.append(entry(conflicted, 0));
    const others = Array.from({ length: 20 }, () => newStream('other'));
    const batchesBefore = writer.stats.batches;

    const outcomes = await Promise.allSettled([
      ...others.slice(0, 10).map((s) => writer.append(entry(s, 0))),
      writer.append(entry(conflicted, 5)),
      ...others.slice(10).map((s) => writer.append(entry(s, 0))),
    ]);

    expect(writer.stats.largestBatchEntries).toBeGreaterThan(1);
    expect(writer.stats.batches - batchesBefore).toBe(1); // they really shared one batch
    const rejected = outcomes[10];
    expect(rejected?.status).toBe('rejected');
    const err = (rejected as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect((err as ConcurrencyError).currentVersion).toBe(1);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(20);
    for (const s of others) expect(await versions(s)).toEqual([1]);
    expect(await versions(conflicted)).toEqual([1]);
  });

  it('never produces a duplicate or missing version when 64 writers race on one stream', async () => {
    const writer = newWriter();
    const reader = new PgEventReader({ connectionString: db.url, poolSize: 8 });
    const s = newStream('hot');
    let conflicts = 0;
    try {
      await Promise.all(
        Array.from({ length: 64 }, async (_, worker) => {
          for (;;) {
            const version = await reader.streamVersion(s);
            try {
              await writer.append(entry(s, version, { commandId: `worker-${worker}`, data: () => ({ worker }) }));
              return;
            } catch (err) {
              if (!(err instanceof ConcurrencyError)) throw err;
              conflicts++;
              await sleep(Math.random() * 3);
            }
          }
        }),
      );
      const events = await reader.readStream(s);
      expect(events.map((e) => e.version)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
      const workers = events.map((e) => (e.data as { worker: number }).worker).sort((a, b) => a - b);
      expect(workers).toEqual(Array.from({ length: 64 }, (_, i) => i));
      expect(await streamVersion(s)).toBe(64);
      expect(conflicts).toBeGreaterThan(0);
    } finally {
      await reader.close();
    }
  });

  it('appends nothing for a repeated command id and rejects it with DuplicateCommandError', async () => {
    const writer = newWriter();
    const s = newStream();
    const other = newStream();
    await writer.append(entry(s, 0, { commandId: 'place-1' }));

    const repeat = writer.append(entry(s, 1, { commandId: 'place-1' }));
    const sameIdOtherStream = writer.append(entry(other, 0, { commandId: 'place-1' }));

    await expect(repeat).rejects.toBeInstanceOf(DuplicateCommandError);
    await expect(repeat).rejects.toMatchObject({ streamId: s, commandId: 'place-1' });
    await expect(sameIdOtherStream).resolves.toMatchObject({ version: 1 });
    expect(await versions(s)).toEqual([1]);
    expect(await streamVersion(s)).toBe(1);
  });

  it('reports a duplicate even when the retry carries a stale expected version', async () => {
    const writer = newWriter();
    const s = newStream();
    await writer.append(entry(s, 0, { commandId: 'once' }));
    await writer.append(entry(s, 1, { commandId: 'twice' }));
    await expect(writer.append(entry(s, 0, { commandId: 'once' }))).rejects.toBeInstanceOf(DuplicateCommandError);
    expect(await versions(s)).toEqual([1, 2]);
  });

  it('appends an entry of three events all or nothing', async () => {
    const writer = newWriter();
    const ok = newStream();
    const conflicting = newStream();
    const badData = newStream();
    await writer.append(entry(conflicting, 0));

    const [good, conflict, bad] = await Promise.allSettled([
      writer.append(entry(ok, 0, { events: 3 })),
      writer.append(entry(conflicting, 0, { events: 3, commandId: 'second' })),
      // PostgreSQL's jsonb refuses \u0000: the third event poisons the entry.
      writer.append(entry(badData, 0, { events: 3, data: (i) => ({ text: i === 2 ? 'nul\u0000' : 'fine' }) })),
    ]);

    expect(good.status).toBe('fulfilled');
    expect((good as PromiseFulfilledResult<AppendResult>).value.positions).toHaveLength(3);
    expect(await versions(ok)).toEqual([1, 2, 3]);
    expect((conflict as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    expect(await versions(conflicting)).toEqual([1]);
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    expect(await versions(badData)).toEqual([]);
    expect(await streamVersion(badData)).toBeUndefined();
  });

  it('isolates an entry whose data the database refuses by retrying the batch entry by entry', async () => {
    const writer = newWriter();
    const streams = Array.from({ length: 6 }, () => newStream());
    const fallbacksBefore = writer.stats.fallbackBatches;
    const outcomes = await Promise.allSettled(streams.map((s, i) => writer.append(entry(s, 0, { data: () => ({ text: i === 3 ? '\u0000' : 'ok' }) }))));
    expect(writer.stats.fallbackBatches).toBe(fallbacksBefore + 1);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((outcomes[3] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    for (const [i, s] of streams.entries()) expect(await versions(s)).toEqual(i === 3 ? [] : [1]);
  });

  it('lets the (stream, version) key refuse an event the streams row did not catch, failing only that entry', async () => {
    const writer = newWriter();
    const s = newStream('forked');
    await writer.append(entry(s, 0));
    // An event at version 2 that the streams row does not know about.
    await pool.query(
      `INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
       VALUES ($1, 2, 'Intruder', 1, '{}', '{}')`,
      [s],
    );
    const others = Array.from({ length: 4 }, () => newStream());
    const outcomes = await Promise.allSettled([writer.append(entry(s, 1)), ...others.map((o) => writer.append(entry(o, 0)))]);
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    expect(outcomes.slice(1).every((o) => o.status === 'fulfilled')).toBe(true);
    expect(await streamVersion(s)).toBe(1);
    const types = await pool.query('SELECT type FROM events WHERE stream_id = $1 ORDER BY version', [s]);
    expect(types.rows.map((r) => r.type)).toEqual(['Tested', 'Intruder']);
  });

  it('refuses with WrongShardError and writes nothing when the fence is above its epoch', async () => {
    const isolated = await isolatedDatabase();
    const writer = newWriter({ epoch: () => 3 }, isolated.url);
    const s = newStream();
    await writer.append(entry(s, 0));
    await bumpFence(isolated.pool, 5);

    const outcomes = await Promise.allSettled([writer.append(entry(s, 1)), writer.append(entry(newStream(), 0))]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const err = (outcome as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(WrongShardError);
      expect((err as WrongShardError).epoch).toBe(5);
    }
    expect(await versions(s, isolated.pool)).toEqual([1]);
    const count = await isolated.pool.query('SELECT count(*)::int AS n FROM events');
    expect(count.rows[0].n).toBe(1);

    const current = newWriter({ epoch: () => 5 }, isolated.url);
    await expect(current.append(entry(s, 1))).resolves.toMatchObject({ version: 2 });
  });

  it('refuses a batch waiting on a fence bump that then commits', async () => {
    const isolated = await isolatedDatabase();
    const writer = newWriter({ epoch: () => 1 }, isolated.url);
    const s = newStream();
    await writer.append(entry(s, 0)); // connected and fenced at 0

    const bump = await isolated.pool.connect();
    try {
      await bump.query('BEGIN');
      await bump.query('UPDATE shard_fence SET epoch = 2');
      const pending = writer.append(entry(s, 1));
      const settled = pending.then(
        () => 'appended',
        (err: unknown) => err,
      );
      await sleep(150); // the batch is now waiting for the fence row
      await bump.query('COMMIT');
      const err = await settled;
      expect(err).toBeInstanceOf(WrongShardError);
      expect((err as WrongShardError).epoch).toBe(2);
    } finally {
      bump.release();
    }
    expect(await versions(s, isolated.pool)).toEqual([1]);
  });

  it('refuses appends to a stream sealed for a move to a newer epoch with the retryable StreamMovingError', async () => {
    const writer = newWriter();
    const s = newStream('moved');
    await writer.append(entry(s, 0));
    await pool.query('UPDATE streams SET moved_at_epoch = 7 WHERE stream_id = $1', [s]);

    const moved = writer.append(entry(s, 1));
    await expect(moved).rejects.toBeInstanceOf(StreamMovingError);
    await expect(moved).rejects.toMatchObject({ targetEpoch: 7, planUnknown: false });
    // A "new stream" append of a moved stream is refused the same way.
    await expect(writer.append(entry(s, 0, { commandId: 'other' }))).rejects.toBeInstanceOf(StreamMovingError);
    expect(await versions(s)).toEqual([1]);
  });

  it('refuses appends to a stream moved away at an epoch the writer holds with WrongShardError', async () => {
    const writer = newWriter({ epoch: () => 7 });
    const s = newStream('moved-old');
    await writer.append(entry(s, 0));
    await pool.query('UPDATE streams SET moved_at_epoch = 7 WHERE stream_id = $1', [s]);

    const moved = writer.append(entry(s, 1));
    await expect(moved).rejects.toBeInstanceOf(WrongShardError);
    await expect(moved).rejects.toMatchObject({ epoch: 7 });
    expect(await versions(s)).toEqual([1]);
  });

  it('behind a move fence, appends only the entries whose aggregates stay, in the same batch', async () => {
    const isolated = await isolatedDatabase();
    const [staying, leaving, leavingNew] = [newStream('stay'), newStream('leave'), newStream('leave-new')];
    const goes = (aggregateId: string) => aggregateId.startsWith('leave');
    const writer = newWriter({ epoch: () => 3, pendingMove: () => ({ epoch: 4, movesAway: goes }) }, isolated.url);
    await Promise.all([writer.append(entry(staying, 0)), writer.append(entry(leaving, 0))]);
    await isolated.pool.query('UPDATE shard_fence SET moving_epoch = 4');

    const outcomes = await Promise.allSettled([writer.append(entry(staying, 1)), writer.append(entry(leaving, 1)), writer.append(entry(leavingNew, 0))]);
    expect(outcomes[0].status).toBe('fulfilled');
    for (const refused of outcomes.slice(1)) {
      expect(refused.status).toBe('rejected');
      const err = (refused as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(StreamMovingError);
      expect(err).toMatchObject({ targetEpoch: 4, planUnknown: false });
    }
    expect(await versions(staying, isolated.pool)).toEqual([1, 2]);
    expect(await versions(leaving, isolated.pool)).toEqual([1]);
    expect(await streamVersion(leavingNew, isolated.pool)).toBeUndefined();

    // A writer that has not heard of the move gets nothing in, moving or not.
    const deaf = newWriter({ epoch: () => 3 }, isolated.url);
    const unknown = deaf.append(entry(staying, 2));
    await expect(unknown).rejects.toBeInstanceOf(StreamMovingError);
    await expect(unknown).rejects.toMatchObject({ targetEpoch: 4, planUnknown: true });
    // Once the writer holds the move's epoch, the move fence no longer applies (ownership decides).
    const after = newWriter({ epoch: () => 4 }, isolated.url);
    await expect(after.append(entry(leaving, 1))).resolves.toMatchObject({ version: 2 });
    expect(await versions(staying, isolated.pool)).toEqual([1, 2]);
  });

  it('gives positions in commit order: entries settle with ever larger positions', async () => {
    const writer = newWriter();
    const streams = Array.from({ length: 40 }, () => newStream('order'));
    const seen: bigint[] = [];
    const appends: Promise<void>[] = [];
    // Four entries per stream in one go: they go out in four successive batches.
    for (let round = 0; round < 4; round++) {
      for (const s of streams) {
        appends.push(
          writer.append(entry(s, round * 2, { events: 2 })).then((result) => {
            seen.push(...result.positions);
          }),
        );
      }
    }
    await Promise.all(appends);

    expect(writer.stats.largestBatchEntries).toBeGreaterThan(1);
    expect(seen).toHaveLength(320);
    for (let i = 1; i < seen.length; i++) expect(seen[i]! > seen[i - 1]!).toBe(true);
    for (const s of streams) expect(await versions(s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const byPosition = await pool.query('SELECT stream_id, version FROM events WHERE stream_id = ANY($1) ORDER BY position', [streams]);
    const last = new Map<string, number>();
    for (const row of byPosition.rows) {
      const v = Number(row.version);
      expect(v).toBe((last.get(row.stream_id) ?? 0) + 1);
      last.set(row.stream_id, v);
    }
  });

  it('writes a second entry for the same stream in the next batch, in order', async () => {
    const writer = newWriter();
    const s = newStream();
    const before = writer.stats.batches;
    const results = await Promise.all([writer.append(entry(s, 0)), writer.append(entry(s, 1)), writer.append(entry(s, 2))]);
    expect(results.map((r) => r.version)).toEqual([1, 2, 3]);
    expect(writer.stats.batches - before).toBe(3);
    expect(await versions(s)).toEqual([1, 2, 3]);
  });

  it('caps a batch at maxBatchEntries and maxBatchBytes', async () => {
    const sizes: number[] = [];
    const byCount = newWriter({ maxBatchEntries: 4, onBatch: (entries) => sizes.push(entries) });
    await Promise.all(Array.from({ length: 20 }, () => byCount.append(entry(newStream(), 0))));
    expect(byCount.stats.largestBatchEntries).toBe(4);
    // onBatch (the shard's batch-size histogram) hears of every batch, with its size.
    expect(sizes).toEqual([4, 4, 4, 4, 4]);

    const byBytes = newWriter({ maxBatchBytes: 3000 });
    const big = () => ({ blob: 'x'.repeat(1000) });
    await Promise.all(Array.from({ length: 9 }, () => byBytes.append(entry(newStream(), 0, { data: big }))));
    expect(byBytes.stats.largestBatchEntries).toBe(2);
    expect(byBytes.stats.entries).toBe(9);
  });

  it('flushes pending entries on close() and refuses entries after it', async () => {
    const writer = newWriter();
    const streams = Array.from({ length: 50 }, () => newStream());
    const appends = streams.map((s) => writer.append(entry(s, 0)));
    await writer.close();
    const outcomes = await Promise.allSettled(appends);
    expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
    for (const s of streams) expect(await versions(s)).toEqual([1]);
    await expect(writer.append(entry(newStream(), 0))).rejects.toBeInstanceOf(StoreUnavailableError);
    await writer.close(); // idempotent
  });

  it('writes a lone append at once, as a batch of one, without waiting for a timer', async () => {
    const writer = newWriter();
    await writer.append(entry(newStream(), 0)); // connect first
    const before = writer.stats.batches;
    await writer.append(entry(newStream(), 0));
    expect(writer.stats.batches - before).toBe(1);
    expect(writer.stats.lastBatchEntries).toBe(1);
  });

  it('never forks a stream when two writers (two processes) append to it at once', async () => {
    const a = newWriter({ applicationName: 'writer-a' });
    const b = newWriter({ applicationName: 'writer-b' });
    const s = newStream('contested');
    for (let round = 0; round < 25; round++) {
      const outcomes = await Promise.allSettled([
        a.append(entry(s, round, { commandId: `a-${round}`, data: () => ({ by: 'a' }) })),
        b.append(entry(s, round, { commandId: `b-${round}`, data: () => ({ by: 'b' }) })),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(ConcurrencyError);
    }
    expect(await versions(s)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const commands = await pool.query('SELECT count(*)::int AS n FROM command_results WHERE stream_id = $1', [s]);
    expect(commands.rows[0].n).toBe(25);
  });

  it('rejects with StoreUnavailableError when the statement times out, then carries on', async () => {
    const writer = newWriter({ statementTimeoutMs: 300 });
    const s = newStream();
    await writer.append(entry(s, 0));
    const blocker = await pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT * FROM shard_fence FOR UPDATE');
      const err = await writer.append(entry(s, 1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      await blocker.query('ROLLBACK');
    } finally {
      blocker.release();
    }
    expect(await versions(s)).toEqual([1]);
    await expect(writer.append(entry(s, 1))).resolves.toMatchObject({ version: 2 });
  });

  it('rejects with StoreUnavailableError when its connection dies mid-batch, and reconnects for the next batch', async () => {
    const writer = newWriter({ applicationName: 'writer-killed' });
    const s = newStream();
    await writer.append(entry(s, 0));
    const blocker = await pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT * FROM shard_fence FOR UPDATE');
      const pending = writer.append(entry(s, 1)).catch((e: unknown) => e);
      await sleep(100);
      await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'writer-killed'`);
      const err = await pending;
      expect(err).toBeInstanceOf(StoreUnavailableError);
      await blocker.query('ROLLBACK');
    } finally {
      blocker.release();
    }
    await expect(writer.append(entry(s, 1))).resolves.toMatchObject({ version: 2 });
    expect(await versions(s)).toEqual([1, 2]);
  });

  it('survives its idle connection being killed', async () => {
    const writer = newWriter({ applicationName: 'writer-idle-killed' });
    const s = newStream();
    await writer.append(entry(s, 0));
    await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'writer-idle-killed'`);
    await sleep(50);
    let version = 1;
    for (let attempt = 0; attempt < 3 && version === 1; attempt++) {
      try {
        version = (await writer.append(entry(s, 1))).version;
      } catch (err) {
        expect(err).toBeInstanceOf(StoreUnavailableError);
      }
    }
    expect(version).toBe(2);
  });

  it('rejects with StoreUnavailableError when the database cannot be reached', async () => {
    const writer = newWriter({}, 'postgres://postgres@127.0.0.1:1/nowhere');
    await expect(writer.append(entry(newStream(), 0))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(writer.stats.unavailableBatches).toBe(1);
  });

  it('refuses a malformed entry before it can share a batch, writing nothing', async () => {
    const writer = newWriter();
    const s = newStream();
    const good = entry(s, 0, { events: 2 });
    await expectRejection(writer.append({ ...good, commands: [{ commandId: 'x', eventCount: 1 }] }), /account for 1 events/);
    await expectRejection(writer.append({ ...good, baseVersion: -1 }), TypeError);
    await expectRejection(writer.append({ ...good, events: [], commands: [] }), TypeError);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expectRejection(writer.append(entry(s, 0, { data: () => circular })), /JSON/);
    expect(await versions(s)).toEqual([]);
    expect(writer.stats.batches).toBe(0);
  });

  it('refuses invalid options at construction, listing every problem', () => {
    expectThrow(
      () => new GroupCommitWriter({ connectionString: '', epoch: () => 0, maxBatchEntries: 0, statementTimeoutMs: 1.5 }),
      /connectionString is required.*maxBatchEntries.*statementTimeoutMs/,
    );
  });
});
