/**
 * A shard's identity is bound to its store, with real processes and real
 * databases: a process pointed at another shard's store does not start; a
 * second process registering a shard id with another store is refused; a
 * rebalance whose store or address does not serve the shard it names is
 * refused before anything is copied.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Rebalancer } from '../../src/rebalance/rebalancer.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder } from '../support/grpc.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startProcess } from '../support/processes.js';
import { freePort } from '../support/postgres-process.js';
import { expectRejection } from '../support/expect-error.js';

let cluster: Cluster;
let ringSql: pg.Pool;
const extra: TestDatabase[] = [];

beforeAll(async () => {
  cluster = await startCluster({ shards: 1, spares: 2 });
  ringSql = new pg.Pool({ connectionString: cluster.ringUrl, max: 2 });
  const client = connect(cluster.routerAddress);
  await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('PlaceOrder', placeOrder(`id-${i}`))));
  client.close();
}, 120_000);

afterAll(async () => {
  await ringSql?.end();
  await cluster?.close();
  for (const db of extra) await db.drop().catch(() => {});
});

/** Runs a shard process expected to refuse to start; resolves with its exit code and output. */
async function refusedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const port = await freePort();
  const started = startProcess('shard/main.ts', { ...cluster.shard('shard-0').env(), GRPC_ADDRESS: `127.0.0.1:${port}`, ...env });
  const err = await started.then(
    async (p) => {
      await p.stop(1000);
      return undefined;
    },
    (e: unknown) => e as Error,
  );
  expect(err, 'the process started although it should have refused').toBeDefined();
  return { code: Number(/exited with (\d+)/.exec(err!.message)?.[1] ?? NaN), output: err!.message };
}

async function identity(sql: pg.Pool): Promise<{ store_id: string; shard_id: string }> {
  return (await sql.query('SELECT store_id::text, shard_id FROM store_identity')).rows[0];
}

async function registrations(): Promise<Record<string, { database_url: string; store_id: string }>> {
  const r = await ringSql.query('SELECT shard_id, database_url, store_id::text FROM shard_stores');
  return Object.fromEntries(r.rows.map((row) => [row.shard_id, { database_url: row.database_url, store_id: row.store_id }]));
}

/** Nothing a move leaves behind: no plan, and the spares' stores hold nothing. */
async function expectNothingMoved(): Promise<void> {
  expect((await ringSql.query('SELECT count(*)::int AS n FROM ring_moves')).rows[0].n).toBe(0);
  for (const id of ['shard-1', 'shard-2']) {
    expect((await cluster.shard(id).sql.query('SELECT count(*)::int AS n FROM events')).rows[0].n, `${id} holds copies`).toBe(0);
  }
  expect((await cluster.ringStore.current())?.epoch).toBe(1);
}

it('every shard claimed its own store and registered its store id with the ring', async () => {
  const regs = await registrations();
  for (const s of cluster.shards) {
    const mine = await identity(s.sql);
    expect(mine.shard_id).toBe(s.id);
    expect(regs[s.id]?.store_id).toBe(mine.store_id);
  }
});

it('a process started with another SHARD_ID on a claimed store refuses to start, and changes nothing', async () => {
  const before = await identity(cluster.shard('shard-0').sql);
  const regsBefore = await registrations();
  // shard-1's id, shard-0's store.
  const { code, output } = await refusedStart({ SHARD_ID: 'shard-1', DATABASE_URL: cluster.shard('shard-0').databaseUrl });
  expect(code).toBe(3);
  expect(output).toMatch(/belongs to shard-0; a process with SHARD_ID=shard-1 must not use it/);
  expect(await identity(cluster.shard('shard-0').sql)).toEqual(before);
  expect(await registrations()).toEqual(regsBefore);
}, 60_000);

it('a second process registering a shard id with another store is refused, and the registration stays', async () => {
  const fresh = await createTestDatabase('sw_ident_other');
  extra.push(fresh);
  const regsBefore = await registrations();
  const { code, output } = await refusedStart({ SHARD_ID: 'shard-0', DATABASE_URL: fresh.url });
  expect(code).toBe(3);
  expect(output).toMatch(/shard-0 is registered with event store .* refusing a second store for one shard id/);
  expect(await registrations()).toEqual(regsBefore);
  // The fresh store was claimed by the refused process (it is shard-0's now only in its own eyes): the ring never named it.
  expect(Object.values(await registrations()).some((r) => r.database_url === fresh.url)).toBe(false);
  // The cluster still serves shard-0's streams.
  const client = connect(cluster.routerAddress);
  await expect(client.call('PlaceOrder', placeOrder('after-refusal'))).resolves.toBeDefined();
  client.close();
}, 60_000);

it('a move given a store of another shard (--database-url) is refused before anything is copied', async () => {
  const request = { kind: 'add', shardId: 'shard-1', address: cluster.shard('shard-1').address } as const;
  const regsBefore = await registrations();
  const run = new Rebalancer({ ringDatabaseUrl: cluster.ringUrl, databaseUrls: { 'shard-1': cluster.shard('shard-2').databaseUrl } }).run(request);
  await expectRejection(run, /the event store given for shard-1 .* is shard-2's .* refusing to use it/);
  expect(await registrations()).toEqual(regsBefore);
  await expectNothingMoved();
}, 60_000);

it('a move whose registered store does not serve the shard it names is refused before anything is copied', async () => {
  const request = { kind: 'add', shardId: 'shard-1', address: cluster.shard('shard-1').address } as const;
  // A registration gone wrong (edited by hand, or restored from elsewhere): shard-1's row names shard-2's store.
  await ringSql.query(`UPDATE shard_stores SET database_url = $1 WHERE shard_id = 'shard-1'`, [cluster.shard('shard-2').databaseUrl]);
  try {
    await expectRejection(new Rebalancer({ ringDatabaseUrl: cluster.ringUrl }).run(request), /the event store registered for shard-1 .* is shard-2's .* refusing to move streams through it/);
    await expectNothingMoved();
  } finally {
    await ringSql.query(`UPDATE shard_stores SET database_url = $1 WHERE shard_id = 'shard-1'`, [cluster.shard('shard-1').databaseUrl]);
  }
}, 60_000);

it('a move naming the address of another shard process is refused before anything is copied', async () => {
  // shard-2's process listens there, on its own store: routers sent to it would reach the wrong data.
  const request = { kind: 'add', shardId: 'shard-1', address: cluster.shard('shard-2').address } as const;
  await expectRejection(
    new Rebalancer({ ringDatabaseUrl: cluster.ringUrl }).run(request),
    /the process at .* is not shard-1 serving store .*it does not serve shardwrite\.identity\/shard-1\/.* \(NOT_FOUND\)/,
  );
  await expectNothingMoved();
}, 60_000);

it('the same move with the right store and address goes through', async () => {
  const request = { kind: 'add', shardId: 'shard-1', address: cluster.shard('shard-1').address } as const;
  const done = await new Rebalancer({ ringDatabaseUrl: cluster.ringUrl, planNoticeMs: 200 }).run(request);
  expect(done.outcome).toBe('done');
  expect(done.figures.streamsTotal).toBeGreaterThan(0);
}, 120_000);
