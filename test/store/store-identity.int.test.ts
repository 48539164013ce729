/**
 * A store's identity is written once: the store id made with it, and the
 * shard id that first claimed it. The ring database binds each shard id to
 * one store id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { PgRingStore } from '../../src/ring/index.js';
import { StoreIdentityError, claimStore, migrate, readStoreIdentity } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { expectRejection } from '../support/expect-error.js';

let store: TestDatabase;
let ringDb: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  [store, ringDb] = await Promise.all([createTestDatabase('sw_ident'), createTestDatabase('sw_ident_ring')]);
  await migrate(store.url);
  pool = new pg.Pool({ connectionString: store.url, max: 2 });
});

afterAll(async () => {
  await pool?.end();
  await store?.drop();
  await ringDb?.drop();
});

describe('store identity', () => {
  it('is made with the store, claimed by the first shard that starts on it, and refused to any other shard id', async () => {
    const before = await readStoreIdentity(pool);
    expect(before?.storeId).toMatch(/^[0-9a-f-]{36}$/);
    expect(before?.shardId).toBeUndefined();

    const claimed = await claimStore(store.url, 'shard-4');
    expect(claimed).toEqual({ storeId: before!.storeId, shardId: 'shard-4' });
    expect(await claimStore(pool, 'shard-4')).toEqual(claimed);
    await expectRejection(claimStore(store.url, 'shard-5'), StoreIdentityError);
    await expectRejection(claimStore(store.url, 'shard-5'), /belongs to shard-4.*SHARD_ID=shard-5/);
    expect(await readStoreIdentity(pool)).toEqual(claimed);
  });

  it('cannot be changed, deleted or truncated once claimed', async () => {
    const { storeId } = (await readStoreIdentity(pool))!;
    await expectRejection(pool.query(`UPDATE store_identity SET shard_id = 'shard-5'`), /written once/);
    await expectRejection(pool.query(`UPDATE store_identity SET store_id = gen_random_uuid()`), /written once/);
    await expectRejection(pool.query('DELETE FROM store_identity'), /written once/);
    await expectRejection(pool.query('TRUNCATE store_identity'), /written once/);
    expect(await readStoreIdentity(pool)).toEqual({ storeId, shardId: 'shard-4' });
  });

  it('survives migrating again', async () => {
    const before = await readStoreIdentity(pool);
    expect(await migrate(store.url)).toEqual([]);
    expect(await readStoreIdentity(pool)).toEqual(before);
  });
});

describe('shard stores in the ring database', () => {
  it('bind a shard id to one store id: the same store may change its URL, another store is refused', async () => {
    const ring = new PgRingStore({ connectionString: ringDb.url });
    try {
      await ring.migrate();
      const mine = randomUUID();
      await ring.registerStore('shard-0', 'postgres://a/one', mine);
      await ring.registerStore('shard-0', 'postgres://b/one', mine);
      expect((await ring.stores()).get('shard-0')).toEqual({ databaseUrl: 'postgres://b/one', storeId: mine });

      await expectRejection(ring.registerStore('shard-0', 'postgres://user:secret@c/two', randomUUID()), StoreIdentityError);
      await expectRejection(ring.registerStore('shard-0', 'postgres://user:secret@c/two', randomUUID()), /shard-0 is registered with event store .* not with store/);
      await expect(ring.registerStore('shard-0', 'postgres://user:secret@c/two', randomUUID())).rejects.not.toThrow(/secret/);
      expect((await ring.stores()).get('shard-0')).toEqual({ databaseUrl: 'postgres://b/one', storeId: mine });

      // A registration from before store ids adopts the store id of the next one.
      await ring.registerStore('shard-1', 'postgres://a/legacy', randomUUID());
      const pool2 = new pg.Pool({ connectionString: ringDb.url, max: 1 });
      await pool2.query(`UPDATE shard_stores SET store_id = NULL WHERE shard_id = 'shard-1'`);
      await pool2.end();
      const adopted = randomUUID();
      await ring.registerStore('shard-1', 'postgres://a/legacy', adopted);
      expect((await ring.stores()).get('shard-1')?.storeId).toBe(adopted);
    } finally {
      await ring.close();
    }
  });
});
