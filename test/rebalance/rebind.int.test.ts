/**
 * `shardwrite ring rebind`: a shard whose event store is lost is bound to a
 * new, empty store, with real databases and a real shard process in this
 * process. Refused while the old store answers as itself, or when the new
 * store holds anything or belongs to another shard; after a rebind the shard
 * starts on the new store (before it, the ring refuses its registration).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ringCommand, type Output } from '../../cli/ring.js';
import { loadShardConfig } from '../../shard/config.js';
import { startShard, type RunningShard } from '../../shard/shard.js';
import { createLogger } from '../../src/observability/logger.js';
import { PgRingStore } from '../../src/ring/index.js';
import { claimStore, migrate } from '../../src/store/index.js';
import { StoreIdentityError } from '../../src/store/store-identity.js';
import { connect, placeOrder } from '../support/grpc.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

let ring: TestDatabase;
let ringStore: PgRingStore;
/** shard-1's store, lost half-way through. */
let old: TestDatabase;
let oldDropped = false;
const databases: TestDatabase[] = [];
const running: RunningShard[] = [];

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase('sw_rebind');
  databases.push(db);
  return db;
}

/** Runs `shardwrite ring rebind …` in this process; resolves with its exit code and what it printed. */
async function rebind(shardId: string, databaseUrl: string): Promise<{ code: number; lines: string[]; errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const out: Output = { line: (t) => lines.push(t), error: (t) => errors.push(t), tty: false };
  const code = await ringCommand(['rebind', shardId, '--database-url', databaseUrl], { RING_DATABASE_URL: ring.url }, out);
  return { code, lines, errors };
}

async function registered(shardId: string): Promise<{ databaseUrl: string; storeId: string | undefined } | undefined> {
  return (await ringStore.stores()).get(shardId);
}

function startShard1(databaseUrl: string): Promise<RunningShard> {
  const config = loadShardConfig({
    SHARDWRITE_INSECURE: 'true',
    SHARD_ID: 'shard-1',
    DATABASE_URL: databaseUrl,
    RING_DATABASE_URL: ring.url,
    GRPC_ADDRESS: '127.0.0.1:0',
    METRICS_ADDRESS: 'off',
  });
  return startShard(config, { logger: createLogger('test', 'silent') }).then((s) => (running.push(s), s));
}

async function eventsIn(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  ring = await createTestDatabase('sw_ring');
  ringStore = new PgRingStore({ connectionString: ring.url });
  await ringStore.migrate();
  await ringStore.initIfEmpty({ epoch: 1, shards: [{ id: 'shard-1', address: '127.0.0.1:1' }] });
  old = await createTestDatabase('sw_rebind_old');
  await migrate(old.url);
  const identity = await claimStore(old.url, 'shard-1');
  await ringStore.registerStore('shard-1', old.url, identity.storeId);
});

afterAll(async () => {
  for (const s of running) await s.close();
  await ringStore?.close();
  if (!oldDropped) await old?.drop();
  for (const db of databases) await db.drop();
  await ring?.drop();
});

describe('ring rebind', () => {
  it('refuses while the old store answers as itself, and changes nothing', async () => {
    const before = await registered('shard-1');
    const fresh = await database();
    const r = await rebind('shard-1', fresh.url);
    expect(r.code).toBe(1);
    expect(r.errors.join('\n')).toMatch(/is reachable: it is not lost/);
    expect(await registered('shard-1')).toEqual(before);
  });

  it('refuses, once the old store is lost, a new store that holds events or belongs to another shard', async () => {
    const before = await registered('shard-1');
    await old.drop();
    oldDropped = true;

    const used = await database();
    await migrate(used.url);
    const sql = new pg.Client({ connectionString: used.url });
    await sql.connect();
    await sql.query(`INSERT INTO streams VALUES ('order-header-x', 'order-header', 'x', 1)`);
    await sql.query(`INSERT INTO events (stream_id, version, type, schema_version, data, metadata) VALUES ('order-header-x', 1, 'OrderPlaced', 1, '{}', '{}')`);
    await sql.end();
    const withEvents = await rebind('shard-1', used.url);
    expect(withEvents.code).toBe(1);
    expect(withEvents.errors.join('\n')).toMatch(/holds events: a shard is rebound only to an empty store/);

    const others = await database();
    await migrate(others.url);
    await claimStore(others.url, 'shard-7');
    const claimed = await rebind('shard-1', others.url);
    expect(claimed.code).toBe(1);
    expect(claimed.errors.join('\n')).toMatch(/belongs to shard-7: refusing to give it to shard-1/);

    expect(await registered('shard-1')).toEqual(before);
  });

  it('binds the shard to a new, empty store once the old one is lost, and the shard then starts on it', async () => {
    const fresh = await database();
    const before = await registered('shard-1');
    // Before the rebind, the shard id's binding to the lost store keeps the shard off the new one.
    await expect(startShard1(fresh.url)).rejects.toBeInstanceOf(StoreIdentityError);

    const r = await rebind('shard-1', fresh.url);
    expect(r.errors).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.lines[0]).toMatch(/shard-1 is bound to store .* is lost: its database at .* does not exist/);
    const after = await registered('shard-1');
    expect(after?.storeId).toBeDefined();
    expect(after?.storeId).not.toBe(before?.storeId);
    expect(after?.databaseUrl).toBe(fresh.url);

    const shard = await startShard1(fresh.url);
    const client = connect(shard.address);
    try {
      expect((await client.call('PlaceOrder', placeOrder('after-rebind'))).version).toBe('1');
    } finally {
      client.close();
    }
    expect(await eventsIn(fresh.url)).toBe(1);
    // The new store is live now: rebinding away from it is refused.
    const again = await rebind('shard-1', (await database()).url);
    expect(again.code).toBe(1);
    expect(again.errors.join('\n')).toMatch(/is reachable: it is not lost/);
  });

  it('counts a store whose server does not answer as lost', async () => {
    await ringStore.registerStore('shard-2', 'postgres://postgres@127.0.0.1:1/gone', '00000000-0000-4000-8000-000000000002');
    const fresh = await database();
    const r = await rebind('shard-2', fresh.url);
    expect(r.errors).toEqual([]);
    expect(r.lines[0]).toMatch(/nothing answers at .*127\.0\.0\.1:1/);
    expect((await registered('shard-2'))?.databaseUrl).toBe(fresh.url);
  });

  it('refuses a shard id with no registration, and bad usage', async () => {
    const fresh = await database();
    const r = await rebind('shard-9', fresh.url);
    expect(r.code).toBe(1);
    expect(r.errors.join('\n')).toMatch(/shard-9 has no registered event store/);
    const out: Output = { line: () => {}, error: () => {}, tty: false };
    expect(await ringCommand(['rebind', 'shard-1'], { RING_DATABASE_URL: ring.url }, out)).toBe(2);
  });
});
