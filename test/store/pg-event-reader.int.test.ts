import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { GroupCommitWriter, migrate, PgEventReader, type AppendEntry } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { expectRejection } from '../support/expect-error.js';

function entry(streamId: string, expectedVersion: number, count: number, commandId: string): AppendEntry {
  return {
    streamId,
    aggregateType: 'order',
    aggregateId: streamId,
    baseVersion: expectedVersion,
    events: Array.from({ length: count }, (_, i) => ({
      type: i % 2 === 0 ? 'LineAdded' : 'LineRemoved',
      schemaVersion: 2,
      data: { n: expectedVersion + i + 1, nested: { ok: true } },
      metadata: { correlationId: `c-${expectedVersion + i + 1}` },
    })),
    commands: [{ commandId, eventCount: count }],
  };
}

describe('PgEventReader', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let writer: GroupCommitWriter;
  let reader: PgEventReader;

  beforeAll(async () => {
    db = await createTestDatabase('sw_reader');
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    writer = new GroupCommitWriter({ connectionString: db.url, epoch: () => 0 });
    reader = new PgEventReader(pool);
    // 12 events on 'a' (so version order differs from text order), 2 on 'b'.
    await writer.append(entry('a', 0, 5, 'a-1'));
    await writer.append(entry('a', 5, 7, 'a-2'));
    await writer.append(entry('b', 0, 2, 'b-1'));
  });

  afterAll(async () => {
    await writer?.close();
    await reader?.close();
    await pool?.end();
    await db?.drop();
  });

  it('reads a whole stream in version order with every stored field', async () => {
    const events = await reader.readStream('a');
    expect(events.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const first = events[0]!;
    expect(first).toMatchObject({
      streamId: 'a',
      version: 1,
      type: 'LineAdded',
      schemaVersion: 2,
      data: { n: 1, nested: { ok: true } },
      metadata: { correlationId: 'c-1' },
    });
    expect(typeof first.position).toBe('bigint');
    expect(first.recordedAt).toBeInstanceOf(Date);
    for (let i = 1; i < events.length; i++) expect(events[i]!.position > events[i - 1]!.position).toBe(true);
  });

  it('reads a stream from a given version on', async () => {
    const events = await reader.readStream('a', 9);
    expect(events.map((e) => e.version)).toEqual([9, 10, 11, 12]);
    expect(await reader.readStream('a', 13)).toEqual([]);
    // A window of versions, as ReadStream pages and a duplicate's reply read them.
    expect((await reader.readStream('a', 3, 6)).map((e) => e.version)).toEqual([3, 4, 5, 6]);
    expect(await reader.readStream('a', 7, 6)).toEqual([]);
    expect(await reader.readStream('nobody')).toEqual([]);
  });

  it('finds many command ids in one batched lookup and leaves out the unknown ones', async () => {
    const found = await reader.findCommands([
      { streamId: 'a', commandId: 'a-2' },
      { streamId: 'b', commandId: 'b-1' },
      { streamId: 'a', commandId: 'b-1' }, // right id, wrong stream
      { streamId: 'a', commandId: 'missing' },
      { streamId: 'a', commandId: 'a-1' },
    ]);
    const sorted = [...found].sort((x, y) => (x.streamId + x.commandId).localeCompare(y.streamId + y.commandId));
    expect(sorted).toEqual([
      { streamId: 'a', commandId: 'a-1', firstVersion: 1, lastVersion: 5 },
      { streamId: 'a', commandId: 'a-2', firstVersion: 6, lastVersion: 12 },
      { streamId: 'b', commandId: 'b-1', firstVersion: 1, lastVersion: 2 },
    ]);
    expect(await reader.findCommands([])).toEqual([]);
  });

  it('reports a stream version, 0 for a stream without events', async () => {
    expect(await reader.streamVersion('a')).toBe(12);
    expect(await reader.streamVersion('b')).toBe(2);
    expect(await reader.streamVersion('nobody')).toBe(0);
  });

  it('refuses to round a version beyond 2^53 - 1 instead of losing precision', async () => {
    await pool.query(`INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version) VALUES ('huge', 'order', 'huge', 9007199254740993)`);
    await expectRejection(reader.streamVersion('huge'), RangeError);
  });

  it('leaves a pool it was given open, and ends a pool it built', async () => {
    const borrowed = new PgEventReader({ pool });
    await borrowed.close();
    expect(await reader.streamVersion('a')).toBe(12);

    const owning = new PgEventReader({ connectionString: db.url, poolSize: 2 });
    expect(await owning.streamVersion('b')).toBe(2);
    await owning.close();
    await expect(owning.streamVersion('b')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('fails with StoreUnavailableError when the database cannot be reached', async () => {
    const unreachable = new PgEventReader({ connectionString: 'postgres://postgres@127.0.0.1:1/nowhere' });
    try {
      await expect(unreachable.readStream('a')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(unreachable.findCommands([{ streamId: 'a', commandId: 'x' }])).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await unreachable.close();
    }
  });
});
