/**
 * The owner cache is always exactly what the stream says: a failed, ambiguous
 * or conflicting append never leaves an entry ahead of or behind the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { StoreUnavailableError, VersionConflictError } from '../../src/errors.js';
import { AggregateLoader } from '../../src/pipeline/loader.js';
import { AggregateCache } from '../../src/pipeline/aggregate-cache.js';
import { GroupCommitWriter } from '../../src/store/index.js';
import type { AppendEntry, Appender } from '../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { ADD, buildStack, tally, type Stack } from './support.js';
import { expectRejection } from '../support/expect-error.js';

/** What the next append does: pass, fail before writing, or write and then report a failure (unknown outcome). */
type Fault = 'none' | 'fail-before' | 'fail-after';

let db: TestDatabase;
let stack: Stack;
let fault: Fault = 'none';
let rogue: GroupCommitWriter;

beforeAll(async () => {
  db = await createTestDatabase('sw_owner');
  stack = await buildStack({
    url: db.url,
    policy: { interval: 1000 },
    appender: (real): Appender => ({
      async append(entry: AppendEntry) {
        const f = fault;
        fault = 'none';
        if (f === 'fail-before') throw new StoreUnavailableError('injected: connection lost before commit');
        const result = await real.append(entry);
        if (f === 'fail-after') throw new StoreUnavailableError('injected: connection lost after commit');
        return result;
      },
      close: () => real.close(),
    }),
  });
  // Another writer on the same database: a stale owner, or an operator's repair.
  rogue = new GroupCommitWriter({ connectionString: db.url, epoch: () => 0 });
});

afterAll(async () => {
  await rogue?.close();
  await stack?.close();
  await db?.drop();
});

const newId = () => randomBytes(4).toString('hex');

/** The stream's state and version from its events alone. */
async function truth(streamId: string) {
  const loaded = await new AggregateLoader(stack.reader, new AggregateCache()).load(streamId, tally);
  return { version: loaded.version, state: loaded.state };
}

/** The cache entry is absent or exactly the stored stream. */
async function expectCoherent(streamId: string): Promise<void> {
  const entry = stack.ownerCache.peek(streamId);
  if (entry) expect({ version: entry.version, state: entry.state }).toEqual(await truth(streamId));
}

describe('the owner cache', () => {
  it('serves a hot aggregate from memory, with no I/O, at the stored state', async () => {
    const id = newId();
    await stack.pipeline.execute(ADD, { id, count: 2 }, {});
    await stack.pipeline.execute(ADD, { id, count: 3 }, {});
    const loaded = await stack.loader.load(`tally-${id}`, tally);
    expect(loaded).toMatchObject({ tier: 'memory', version: 5, state: { total: 5 }, replayed: 0 });
    await expectCoherent(`tally-${id}`);
  });

  it('is not left ahead of the store by an append that failed before it committed', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await stack.pipeline.execute(ADD, { id, count: 2 }, {});
    fault = 'fail-before';
    await expect(stack.pipeline.execute(ADD, { id, count: 3 }, {})).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(stack.ownerCache.peek(stream)?.version ?? 2).toBe(2);
    await expectCoherent(stream);
    const next = await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    expect(next.version).toBe(3);
    await expectCoherent(stream);
  });

  it('is not left behind the store by an append that committed but was reported failed', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await stack.pipeline.execute(ADD, { id, count: 2 }, {});
    fault = 'fail-after';
    await expect(stack.pipeline.execute(ADD, { id, count: 3 }, {})).rejects.toBeInstanceOf(StoreUnavailableError);
    expect((await truth(stream)).version).toBe(5);
    await expectCoherent(stream);
    const next = await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    expect(next).toMatchObject({ version: 6 });
    expect(next.events[0]!.data).toEqual({ n: 6 });
    await expectCoherent(stream);
  });

  it('catches up after a conflicting append by another writer, deciding on the new state', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await stack.pipeline.execute(ADD, { id, count: 2 }, {});
    expect(stack.ownerCache.peek(stream)?.version).toBe(2);
    await rogue.append({
      streamId: stream,
      aggregateType: 'tally',
      aggregateId: id,
      baseVersion: 2,
      events: [3, 4].map((n) => ({ type: 'Counted', schemaVersion: 1, data: { n }, metadata: {} })),
      commands: [{ eventCount: 2 }],
    });
    // The cached entry (version 2) is now behind: the append conflicts, the entry is dropped and the command retried.
    const out = await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    expect(out).toMatchObject({ version: 5 });
    expect(out.events[0]!.data).toEqual({ n: 5 });
    expect(stack.ownerCache.peek(stream)?.version).toBe(5);
    await expectCoherent(stream);
  });

  it('is unchanged by commands that are refused before appending', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await stack.pipeline.execute(ADD, { id, count: 2 }, {});
    const before = stack.ownerCache.peek(stream);
    await expectRejection(stack.pipeline.execute(ADD, { id, count: 1, fail: true }, {}), 'refused');
    await expect(stack.pipeline.execute(ADD, { id, count: 1, expectedVersion: 7 }, {})).rejects.toBeInstanceOf(VersionConflictError);
    expect(stack.ownerCache.peek(stream)).toEqual(before);
    await expectCoherent(stream);
  });
});
