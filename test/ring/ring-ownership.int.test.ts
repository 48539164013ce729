import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { WrongShardError } from '../../src/errors.js';
import { PgRingStore, RingOwnership, RingView, RingWatcher, type RingDocument } from '../../src/ring/index.js';
import { GroupCommitWriter, bumpFence, migrate, type AppendEntry, type AppendResult, type Appender } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { expectThrow } from '../support/expect-error.js';

let ringDb: TestDatabase;
let shardDb: TestDatabase;
let store: PgRingStore;
let sql: pg.Pool;

const E1: RingDocument = {
  epoch: 1,
  shards: [
    { id: 'shard-0', address: '127.0.0.1:51100' },
    { id: 'shard-1', address: '127.0.0.1:51101' },
  ],
};
/** Epoch 2 hands everything to shard-1. */
const E2: RingDocument = { epoch: 2, shards: [{ id: 'shard-1', address: '127.0.0.1:51101' }] };

function entry(aggregateId: string, expectedVersion: number): AppendEntry {
  return {
    streamId: `order-header-${aggregateId}`,
    aggregateType: 'order-header',
    aggregateId,
    baseVersion: expectedVersion,
    events: [{ type: 'OrderNoted', schemaVersion: 1, data: { n: expectedVersion + 1 }, metadata: {} }],
    commands: [{ eventCount: 1 }],
  };
}

async function eventCount(aggregateId: string): Promise<number> {
  const r = await sql.query('SELECT count(*)::int AS n FROM events WHERE stream_id = $1', [`order-header-${aggregateId}`]);
  return r.rows[0].n as number;
}

beforeAll(async () => {
  [ringDb, shardDb] = await Promise.all([createTestDatabase('sw_ring'), createTestDatabase('sw_fence')]);
  store = new PgRingStore({ connectionString: ringDb.url });
  await store.migrate();
  await migrate(shardDb.url);
  sql = new pg.Pool({ connectionString: shardDb.url, max: 2 });
});

afterAll(async () => {
  await store?.close();
  await sql?.end();
  await ringDb?.drop();
  await shardDb?.drop();
});

describe('RingOwnership', () => {
  it('owns nothing, at epoch 0, while there is no ring', async () => {
    const empty = new PgRingStore({ connectionString: ringDb.url });
    const watcher = new RingWatcher(empty, { pollMs: 0, notify: false });
    try {
      await watcher.start();
      const ownership = new RingOwnership('shard-0', watcher);
      expect(ownership.epoch()).toBe(0);
      expectThrow(() => ownership.assertOwner('o-1'), WrongShardError);
    } finally {
      await watcher.close();
      await empty.close();
    }
  });

  it('a stale owner whose in-memory check still passes is refused inside the append transaction, then catches up', async () => {
    await store.initIfEmpty(E1);
    const watcher = new RingWatcher(store, { pollMs: 0, notify: false });
    const ownership = new RingOwnership('shard-0', watcher);
    const writer = new GroupCommitWriter({ connectionString: shardDb.url, epoch: () => ownership.epoch() });
    try {
      await watcher.start();
      await bumpFence(sql, ownership.epoch());
      const e1 = new RingView(E1);
      const id = Array.from({ length: 100 }, (_, i) => `o-fence-${i}`).find((k) => e1.ownerOf(k).id === 'shard-0')!;

      ownership.assertOwner(id);
      await writer.append(entry(id, 0));
      expect(await eventCount(id)).toBe(1);

      // The ring moves on and the store is fenced at the new epoch while this owner hears nothing.
      await store.publish(E2, 1);
      expect(await bumpFence(sql, 2)).toBe(2);

      expect(() => ownership.assertOwner(id)).not.toThrow();
      expect(ownership.epoch()).toBe(1);
      const refused = await writer.append(entry(id, 1)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(WrongShardError);
      expect((refused as WrongShardError).epoch).toBe(2);
      expect(await eventCount(id)).toBe(1);

      // Told by the store, it reads the ring and now refuses the aggregate itself.
      ownership.onFenced((refused as WrongShardError).epoch);
      await expect.poll(() => ownership.epoch(), { timeout: 5000 }).toBe(2);
      let wrong: unknown;
      try {
        ownership.assertOwner(id);
      } catch (err) {
        wrong = err;
      }
      expect(wrong).toBeInstanceOf(WrongShardError);
      expect((wrong as WrongShardError).metadata()).toEqual({ epoch: '2' });
    } finally {
      await writer.close();
      await watcher.close();
    }
  });

  it('hands an entry to the writer only while the shard owns it, and stamps batches with the oldest epoch an entry was checked at', async () => {
    const ringDb2 = await createTestDatabase('sw_ring');
    const store2 = new PgRingStore({ connectionString: ringDb2.url });
    const watcher = new RingWatcher(store2, { pollMs: 0, notify: false });
    try {
      await store2.migrate();
      await store2.initIfEmpty(E1);
      await watcher.start();
      const ownership = new RingOwnership('shard-0', watcher);
      // A writer whose appends settle only when the test says so.
      const handed: { entry: AppendEntry; settle: () => void }[] = [];
      const writer: Appender = {
        append: (entry) => new Promise<AppendResult>((resolve) => handed.push({ entry, settle: () => resolve({ streamId: entry.streamId, version: 1, positions: [1n], recordedAt: new Date() }) })),
        close: async () => {},
      };
      const guarded = ownership.guard(writer);
      const e1 = new RingView(E1);
      const kept = Array.from({ length: 100 }, (_, i) => `o-guard-${i}`).find((k) => e1.ownerOf(k).id === 'shard-0')!;

      const first = guarded.append(entry(kept, 0));
      expect(handed).toHaveLength(1);
      // Epoch 2 keeps `kept` with shard-0 but gives `moved` to shard-1.
      const E2b: RingDocument = { epoch: 2, shards: [...E1.shards, { id: 'shard-2', address: '127.0.0.1:51102' }] };
      const e2 = new RingView(E2b);
      const [kept2, moved2] = [
        Array.from({ length: 200 }, (_, i) => `o-guard-${i}`).find((k) => e1.ownerOf(k).id === 'shard-0' && e2.ownerOf(k).id === 'shard-0')!,
        Array.from({ length: 200 }, (_, i) => `o-guard-${i}`).find((k) => e1.ownerOf(k).id === 'shard-0' && e2.ownerOf(k).id !== 'shard-0')!,
      ];
      await store2.publish(E2b, 1);
      await watcher.refresh(2);

      // The entry checked at epoch 1 is still with the writer: batches keep claiming epoch 1.
      expect(ownership.epoch()).toBe(1);
      const second = guarded.append(entry(kept2, 0));
      expect(handed).toHaveLength(2);
      expect(ownership.epoch()).toBe(1);
      handed[0]!.settle();
      await first;
      expect(ownership.epoch()).toBe(2);

      // An aggregate given away since its command was admitted never reaches the writer.
      const refused = await guarded.append(entry(moved2, 0)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(WrongShardError);
      expect((refused as WrongShardError).epoch).toBe(2);
      expect(handed).toHaveLength(2);
      handed[1]!.settle();
      await second;
    } finally {
      await watcher.close();
      await store2.close();
      await ringDb2.drop();
    }
  });
});
