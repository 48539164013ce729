import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PgRingStore, RingConflictError, RingWatcher, type RingDocument, type RingView } from '../../src/ring/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { expectRejection } from '../support/expect-error.js';

const doc = (epoch: number, ...ids: string[]): RingDocument => ({
  epoch,
  shards: ids.map((id, k) => ({ id, address: `127.0.0.1:${51000 + k}` })),
});

const databases: TestDatabase[] = [];
const stores: PgRingStore[] = [];
const watchers: RingWatcher[] = [];

async function freshStore(): Promise<{ db: TestDatabase; store: PgRingStore }> {
  const db = await createTestDatabase('sw_ring');
  databases.push(db);
  const store = new PgRingStore({ connectionString: db.url });
  stores.push(store);
  await store.migrate();
  return { db, store };
}

afterAll(async () => {
  for (const w of watchers) await w.close();
  for (const s of stores) await s.close();
  for (const db of databases) await db.drop();
});

describe('PgRingStore', () => {
  it('has no ring until one is written, even before its schema exists', async () => {
    const db = await createTestDatabase('sw_ring');
    databases.push(db);
    const store = new PgRingStore({ connectionString: db.url });
    stores.push(store);
    expect(await store.current()).toBeUndefined();
    await store.migrate();
    expect(await store.current()).toBeUndefined();
  });

  it('lets many processes migrate and initialise at once: the first writer wins and all of them get its ring', async () => {
    const db = await createTestDatabase('sw_ring');
    databases.push(db);
    const starters = Array.from({ length: 6 }, () => new PgRingStore({ connectionString: db.url }));
    stores.push(...starters);
    await Promise.all(starters.map((s) => s.migrate()));
    const results = await Promise.all(starters.map((s, i) => s.initIfEmpty({ epoch: 1, shards: [{ id: `shard-${i}`, address: `h${i}:1` }] })));

    const winner = results[0]!;
    for (const r of results) expect(r).toEqual(winner);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      expect((await c.query('SELECT count(*)::int AS n FROM ring_epochs')).rows[0].n).toBe(1);
      expect((await c.query('SELECT count(*)::int AS n FROM ring_schema_migrations')).rows[0].n).toBe(8);
    } finally {
      await c.end();
    }
    // Initialising again changes nothing.
    expect(await starters[1]!.initIfEmpty(doc(1, 'other'))).toEqual(winner);
  });

  it('publishes the next epoch only on top of the epoch it was based on', async () => {
    const { store } = await freshStore();
    await store.initIfEmpty(doc(1, 'shard-0', 'shard-1'));

    expect(await store.publish(doc(2, 'shard-0', 'shard-1', 'shard-2'), 1)).toEqual(doc(2, 'shard-0', 'shard-1', 'shard-2'));
    await expectRejection(store.publish(doc(2, 'shard-0'), 1), RingConflictError);
    await expectRejection(store.publish(doc(4, 'shard-0'), 2), RangeError);
    expect(await store.current()).toEqual(doc(2, 'shard-0', 'shard-1', 'shard-2'));

    // Racing publishers from the same base: exactly one wins.
    const racers = Array.from({ length: 5 }, (_, i) => store.publish(doc(3, `shard-${i}`), 2));
    const settled = await Promise.allSettled(racers);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    for (const s of settled) if (s.status === 'rejected') expect(s.reason).toBeInstanceOf(RingConflictError);
    expect((await store.current())?.epoch).toBe(3);
  });

  it('never lets a published epoch change or go', async () => {
    const { db, store } = await freshStore();
    await store.initIfEmpty(doc(1, 'shard-0'));
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await expectRejection(c.query(`UPDATE ring_epochs SET shards = '[]'::jsonb WHERE epoch = 1`), /immutable/);
      await expectRejection(c.query('DELETE FROM ring_epochs WHERE epoch = 1'), /immutable/);
      await expectRejection(c.query('TRUNCATE ring_epochs'), /immutable/);
    } finally {
      await c.end();
    }
    expect(await store.current()).toEqual(doc(1, 'shard-0'));
  });
});

describe('RingWatcher', () => {
  it('hears of a new epoch by notification, long before its next poll', async () => {
    const { store } = await freshStore();
    await store.initIfEmpty(doc(1, 'shard-0'));
    const pollMs = 60_000;
    const watcher = new RingWatcher(store, { pollMs });
    watchers.push(watcher);
    expect((await watcher.start())?.epoch).toBe(1);
    const seen: RingView[] = [];
    const changed = new Promise<void>((resolve) =>
      watcher.onChange((view) => {
        seen.push(view);
        resolve();
      }),
    );

    const started = Date.now();
    await store.publish(doc(2, 'shard-0', 'shard-1'), 1);
    await changed;
    // Far below one poll interval (a generous bound, not a speed target): the notification, not the poll, told it.
    expect(Date.now() - started).toBeLessThan(pollMs / 4);
    expect(seen.map((v) => v.epoch)).toEqual([2]);
    expect(watcher.view?.shards.map((s) => s.id)).toEqual(['shard-0', 'shard-1']);
  });

  it('finds a new epoch by polling when notifications are off', async () => {
    const { store } = await freshStore();
    const watcher = new RingWatcher(store, { pollMs: 50, notify: false });
    watchers.push(watcher);
    expect(await watcher.start()).toBeUndefined();
    expect(watcher.epoch).toBe(0);
    await store.initIfEmpty(doc(1, 'shard-0'));
    await expect.poll(() => watcher.epoch, { timeout: 5000 }).toBe(1);
  });

  it('reads on demand, skipping the read when it already holds the epoch asked for', async () => {
    const { store } = await freshStore();
    await store.initIfEmpty(doc(1, 'shard-0'));
    const watcher = new RingWatcher(store, { pollMs: 0, notify: false });
    watchers.push(watcher);
    await watcher.start();
    await store.publish(doc(2, 'shard-1'), 1);

    // Already at or past epoch 1: no read, still epoch 1.
    expect((await watcher.refresh(1))?.epoch).toBe(1);
    // Behind epoch 2: reads, and every concurrent caller gets the new view.
    const views = await Promise.all([watcher.refresh(2), watcher.refresh(2), watcher.refresh()]);
    expect(views.map((v) => v?.epoch)).toEqual([2, 2, 2]);
  });

  it('keeps no password: a registered store URL loses it, and a table write that carries one is refused', async () => {
    const { db, store } = await freshStore();
    await store.registerStore('shard-0', 'postgres://shard0:s3cret%21@db-0:5432/events?sslmode=verify-full&sslrootcert=/etc/pg/ca.crt', randomUUID());
    await store.registerStore('shard-1', 'postgresql://db-1/events?user=shard1&password=s3cret&sslmode=verify-full', randomUUID());
    const stored = await store.stores();
    expect(stored.get('shard-0')?.databaseUrl).toBe('postgres://shard0@db-0:5432/events?sslmode=verify-full&sslrootcert=%2Fetc%2Fpg%2Fca.crt');
    expect(stored.get('shard-1')?.databaseUrl).toBe('postgresql://db-1/events?user=shard1&sslmode=verify-full');
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const all = await sql.query(`SELECT string_agg(database_url, ' ') AS urls FROM shard_stores`);
      expect(all.rows[0].urls).not.toContain('s3cret');
      for (const url of ['postgres://u:p@h/db', 'postgres://h/db?password=p', 'postgres://h/db?x=1&sslpassword=p']) {
        await expect(sql.query(`INSERT INTO shard_stores (shard_id, database_url) VALUES ('x', $1)`, [url])).rejects.toMatchObject({ code: '23514' });
      }
    } finally {
      await sql.end();
    }
  });

  it('strips the passwords an older version stored when it migrates', async () => {
    const db = await createTestDatabase('sw_ring');
    databases.push(db);
    const store = new PgRingStore({ connectionString: db.url });
    stores.push(store);
    await store.migrate();
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      // As version 5 left it: drop what migration 6 added, store a password, migrate again.
      await sql.query('ALTER TABLE shard_stores DROP CONSTRAINT shard_stores_no_password');
      await sql.query('DELETE FROM ring_schema_migrations WHERE version = 6');
      await sql.query(`INSERT INTO shard_stores (shard_id, database_url) VALUES ('shard-0', 'postgres://u:old%40pw@h:5432/db?sslmode=require&password=x&application_name=a')`);
      await store.migrate();
      expect((await store.stores()).get('shard-0')?.databaseUrl).toBe('postgres://u@h:5432/db?sslmode=require&application_name=a');
    } finally {
      await sql.end();
    }
  });
});
