/**
 * TLS on every hop, least privilege in storage and secrets, over real
 * processes: a secure cluster (clients → router TLS, router → shards mutual
 * TLS, JWT bearer tokens) whose shards reach their stores on a PostgreSQL
 * that serves TLS (`sslmode=verify-full` against the test CA) as a login user
 * of `shardwrite_shard` (each store migrated beforehand by its owner), cache
 * snapshots in a TLS-only Redis (`rediss://`, REDIS_CA_FILE) under an ACL user
 * with an HMAC key, and rebalance as a login user of `shardwrite_rebalancer`
 * (SHARD_DATABASE_USER). It tries what an attacker holding one of those
 * credentials would: an UPDATE of an event with the shard's own login, a
 * planted Redis snapshot; and it reads every log line and metric for the
 * secrets it handed out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { REBALANCER_ROLE, SHARD_ROLE, migrate } from '../../src/store/index.js';
import { signEntry } from '../../src/cache/redis-snapshot-cache.js';
import { clientCredentials } from '../../src/grpc/tls.js';
import { RingView } from '../../src/ring/index.js';
import { ringCommand } from '../../cli/ring.js';
import { ensureDevCertificates, type CertFiles } from '../../scripts/dev-certificates.js';
import { startCluster, tlsEnv, type Cluster } from '../support/cluster.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';
import { freePort } from '../support/postgres-process.js';
import { sqlState, withClient } from '../support/pg.js';
import { startProcess } from '../support/processes.js';
import { REDIS_SERVER_AVAILABLE, startTlsPostgres, startTlsRedis, type TlsBackend, type TlsPostgres } from '../support/tls-backends.js';
import { testKeys } from '../auth/keys.js';

if (!REDIS_SERVER_AVAILABLE) console.log('[security/storage] redis-server is not on PATH: skipped');

const shardUser = 'sw_shard_0';
const rebalancerUser = 'sw_rebalancer';
const dbPassword = `db-${randomBytes(12).toString('hex')}`;
const redisUser = 'shard';
const redisPassword = `redis-${randomBytes(12).toString('hex')}`;
const prefix = 'sw:snap:';
const snapshotKey = randomBytes(32).toString('base64');
const masterKey = randomBytes(32).toString('base64');
const tokens: Record<string, string> = {};
/** Each shard's store (the owner's URL, plaintext allowed), by shard index. */
const stores: string[] = [];
let postgres: TlsPostgres | undefined;
let redisServer: TlsBackend | undefined;
let certs: Record<string, CertFiles>;
let cluster: Cluster;
let redis: Redis;
let dir: string;
let metricsPorts: number[];
const cliOutput: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The URL of `database` on the TLS PostgreSQL as `user`, verifying the server against `caFile`. */
function verifiedUrl(user: string, database: string, caFile = certs.postgres!.caFile): string {
  return `postgres://${user}:${dbPassword}@127.0.0.1:${postgres!.port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
}

const onServer = <T>(run: (c: pg.Client) => Promise<T>, url: string): Promise<T> => withClient(url, run);

describe.skipIf(!REDIS_SERVER_AVAILABLE)('storage in a secure cluster', () => {
  beforeAll(async () => {
    const keys = await testKeys();
    tokens.alice = await keys.sign({ sub: 'alice', tenant: 'tenant-a' });
    tokens.bob = await keys.sign({ sub: 'bob', tenant: 'tenant-b' });
    dir = mkdtempSync(join(tmpdir(), 'sw-storage-'));
    const local = { ips: ['127.0.0.1'], dns: ['localhost'] };
    certs = await ensureDevCertificates(
      join(dir, 'backends'),
      [
        { name: 'postgres', ...local },
        { name: 'redis', ...local },
      ],
      'storage test CA',
    );
    postgres = await startTlsPostgres(certs.postgres!);
    redisServer = await startTlsRedis(certs.redis!, redisUser, redisPassword, dir);
    redis = new Redis(`rediss://${redisUser}:${redisPassword}@127.0.0.1:${redisServer.port}`, { tls: { ca: readFileSync(certs.redis!.caFile) } });
    writeFileSync(join(dir, 'rebalancer.password'), `${dbPassword}\n`, { mode: 0o600 });
    metricsPorts = [await freePort(), await freePort(), await freePort()];
    // Each store is created and migrated by its owner (the migration also makes the group roles); the logins join the roles.
    for (let i = 0; i < 3; i++) {
      await onServer((c) => c.query(`CREATE DATABASE store_${i}`), postgres.adminUrl);
      const owner = new URL(postgres.adminUrl);
      owner.pathname = `/store_${i}`;
      stores.push(owner.toString());
      await migrate(owner.toString());
    }
    await onServer(async (c) => {
      await c.query(`CREATE ROLE ${shardUser} LOGIN PASSWORD '${dbPassword}' IN ROLE ${SHARD_ROLE}`);
      await c.query(`CREATE ROLE ${rebalancerUser} LOGIN PASSWORD '${dbPassword}' IN ROLE ${REBALANCER_ROLE}`);
    }, postgres.adminUrl);
    cluster = await startCluster({
      shards: 2,
      spares: 1,
      tls: true,
      auth: keys.env,
      databaseUrl: (i) => Promise.resolve(verifiedUrl(shardUser, `store_${i}`)),
      shardEnv: (i) => ({
        REDIS_URL: `rediss://${redisUser}:${redisPassword}@127.0.0.1:${redisServer!.port}`,
        REDIS_CA_FILE: certs.redis!.caFile,
        REDIS_SNAPSHOT_KEY: snapshotKey,
        PERSONAL_DATA_MASTER_KEY: masterKey,
        // A snapshot after every event, and no owner cache: every command loads its stream, asking Redis first.
        SNAPSHOT_INTERVAL: '1',
        CACHE_MAX_ENTRIES: '0',
        // Latency is not this file's subject: at the default 50 ms a TLS read on a loaded machine
        // times out, counts as a timeout (a miss) instead of a rejection, and the planted-snapshot test fails.
        REDIS_TIMEOUT_MS: '5000',
        LOG_LEVEL: 'debug',
        METRICS_ADDRESS: `127.0.0.1:${metricsPorts[i]}`,
      }),
      routerEnv: { LOG_LEVEL: 'debug' },
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.close();
    redis?.disconnect();
    await redisServer?.stop();
    await postgres?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function withClient<T>(address: string, token: string, fn: (c: Clients) => Promise<T>): Promise<T> {
    const c = connect(address, { token, credentials: clientCredentials({ caFile: cluster.tls!.caFile }) });
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }

  const ownerUrl = (i: number) => stores[i]!;
  const storeOf = (shardId: string) => stores[cluster.shard(shardId).index]!;

  /** The cached entry of `streamId` once its snapshot reached `version`. */
  async function cachedAt(streamId: string, version: number): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const value = await redis.get(prefix + streamId);
      if (value !== null && (JSON.parse(value) as { v: number }).v >= version) return value;
      if (Date.now() > deadline) throw new Error(`no Redis snapshot of ${streamId} at version ${version} or later`);
      await sleep(50);
    }
  }

  /** The shard's Redis reads so far, by outcome (hit, miss, rejected, timeout…). */
  async function cacheGets(shardIndex: number): Promise<Record<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${metricsPorts[shardIndex]}/metrics`)).text();
    const gets = text.split('\n').filter((l) => l.startsWith('shardwrite_snapshot_cache_ops_total{') && l.includes('op="get"'));
    return Object.fromEntries(gets.map((l) => [/outcome="([^"]+)"/.exec(l)![1], Number(l.slice(l.lastIndexOf(' ') + 1))]));
  }

  it("runs the shards' hot path under their restricted login, over verified TLS: commands, snapshots in PostgreSQL and Redis", async () => {
    const id = 'lp-1';
    await withClient(cluster.routerAddress, tokens.alice!, async (c) => {
      await c.call('PlaceOrder', placeOrder(id));
      await c.call('AuthorizePayment', { orderId: id, commandId: 'lp-auth', amountCents: '1000', currency: 'EUR' });
      await c.call('CapturePayment', { orderId: id, commandId: 'lp-cap-1', amountCents: '100' });
      expect(await c.readStream('order-payment', id)).toHaveLength(2);
    });
    // Without an owner cache a snapshot is taken by the next load that replays an event: v1 here.
    expect(JSON.parse(await cachedAt(`order-payment-${id}`, 1))).toMatchObject({ id: `order-payment-${id}`, m: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const owner = cluster.shard(cluster.ownerOf(id));
    const sessions = await onServer(
      (c) =>
        c.query<{ usename: string; ssl: boolean }>(
          'SELECT DISTINCT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()',
        ),
      ownerUrl(owner.index),
    );
    // Every connection to the store but this check's (the shard's pool, the test's own) is the restricted user, over TLS.
    expect(sessions.rows).toEqual([{ usename: shardUser, ssl: true }]);
    // A login that can only append: nothing to warn about.
    for (const s of cluster.shards) expect(s.process.output()).not.toMatch(/may UPDATE and DELETE events/);
    const snapshots = await onServer((c) => c.query(`SELECT version::int AS v FROM snapshots WHERE stream_id = $1`, [`order-payment-${id}`]), ownerUrl(owner.index));
    expect(snapshots.rows).toEqual([{ v: 1 }]);
  });

  it('refuses to start a shard whose store presents a certificate its sslrootcert does not vouch for, without printing the password', async () => {
    const other = await ensureDevCertificates(join(dir, 'other'), [{ name: 'postgres', ips: ['127.0.0.1'], dns: ['localhost'] }], 'another CA');
    const shard = cluster.shards[0]!;
    const refused = startProcess('shard/main.ts', { ...shard.env(), GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', DATABASE_URL: verifiedUrl(shardUser, 'store_0', other.postgres!.caFile) });
    const error = await refused.then(
      async (p) => {
        await p.stop();
        return 'started';
      },
      (err: Error) => err.message,
    );
    expect(error).toMatch(/exited with [1-9][\s\S]*(self[- ]signed|certificate)/i);
    expect(error).not.toContain(dbPassword);
  });

  it('refuses UPDATE, DELETE and TRUNCATE of events with the very login the shard runs with', async () => {
    const owner = cluster.shard(cluster.ownerOf('lp-1'));
    const before = await onServer((c) => c.query('SELECT count(*)::int AS n FROM events'), ownerUrl(owner.index));
    await onServer(async (c) => {
      expect(await sqlState(c.query(`UPDATE events SET data = '{"amountCents": 1}' WHERE stream_id = 'order-payment-lp-1'`))).toBe('42501');
      expect(await sqlState(c.query(`DELETE FROM events WHERE stream_id = 'order-payment-lp-1'`))).toBe('42501');
      expect(await sqlState(c.query('TRUNCATE events'))).toBe('42501');
    }, owner.databaseUrl);
    const after = await onServer((c) => c.query('SELECT count(*)::int AS n FROM events'), ownerUrl(owner.index));
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('rejects and counts a planted Redis snapshot (edited, or signed with another key) and decides on PostgreSQL', async () => {
    const id = 'lp-1';
    const streamId = `order-payment-${id}`;
    const owner = cluster.shard(cluster.ownerOf(id));
    const genuine = await cachedAt(streamId, 1);
    expect(genuine).toContain('"authorizedCents":1000,');
    // 900 of the 1,000 authorized cents remain; a planted state claims a million.
    const edited = genuine.replace('"authorizedCents":1000,', '"authorizedCents":100000000,');
    const body = edited.slice(0, edited.lastIndexOf(',"m":')) + '}';
    const planted = [edited, signEntry('an attacker key that is long enough, 32+ bytes', body)];
    for (const [n, value] of planted.entries()) {
      await redis.set(prefix + streamId, value);
      const before = await cacheGets(owner.index);
      const outcome = await withClient(cluster.routerAddress, tokens.alice!, (c) => c.attempt('CapturePayment', { orderId: id, commandId: `lp-cap-big-${n}`, amountCents: '5000' }));
      expect(outcome).toMatchObject({ error: { code: grpc.status.FAILED_PRECONDITION, reason: 'BUSINESS_RULE', message: expect.stringMatching(/only 900 of 1000/) } });
      const after = await cacheGets(owner.index);
      expect(after.rejected ?? 0, `Redis reads before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`).toBeGreaterThan(before.rejected ?? 0);
    }
    await redis.set(prefix + streamId, planted[1]!);
    await withClient(cluster.routerAddress, tokens.alice!, async (c) => {
      expect(await c.call('CapturePayment', { orderId: id, commandId: 'lp-cap-rest', amountCents: '900' })).toMatchObject({ version: '3' });
      const captured = (await c.readStream('order-payment', id)).filter((e) => e.type === 'PaymentCaptured');
      expect(captured.map((e) => (JSON.parse(e.data) as { amountCents: number }).amountCents)).toEqual([100, 900]);
    });
  });

  it("moves streams under the rebalancer's own login (SHARD_DATABASE_USER): each keeps its tenant, another tenant still gets NOT_FOUND at the new owner", async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `lp-move-${i}`);
    await withClient(cluster.routerAddress, tokens.alice!, async (c) => {
      for (const id of ids) await c.call('PlaceOrder', placeOrder(id));
    });
    const spare = cluster.shard('shard-2');
    // The ring keeps each store's URL with the shard's user and no password. The move deletes the
    // moved streams at their old owner, which that user may not do: it succeeds only under SHARD_DATABASE_USER.
    const out = { tty: false, line: (t: string) => void cliOutput.push(t), error: (t: string) => void cliOutput.push(t) };
    const env = { RING_DATABASE_URL: cluster.ringUrl, SHARD_DATABASE_USER: rebalancerUser, SHARD_DATABASE_PASSWORD_FILE: join(dir, 'rebalancer.password'), ...tlsEnv(cluster.tls!.files.rebalancer!) };
    expect(await ringCommand(['add', spare.id, '--address', spare.address], env, out), cliOutput.join('\n')).toBe(0);
    const view = new RingView((await cluster.ringStore.current())!);
    const moved = ids.filter((id) => view.ownerOf(id).id === spare.id);
    expect(moved.length).toBeGreaterThan(0);
    const atOld = await onServer((c) => c.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = ANY($1)`, [moved.map((id) => `order-header-${id}`)]), storeOf(cluster.ownerOf(moved[0]!)));
    expect(atOld.rows[0].n).toBe(0);
    const tenants = await onServer((c) => c.query(`SELECT DISTINCT tenant FROM streams WHERE stream_id = ANY($1)`, [moved.map((id) => `order-header-${id}`)]), storeOf(spare.id));
    expect(tenants.rows).toEqual([{ tenant: 'tenant-a' }]);
    for (const address of [cluster.routerAddress, spare.address]) {
      await withClient(address, tokens.bob!, async (c) => {
        expect(await c.attempt('CancelOrder', { orderId: moved[0]!, reason: 'not yours' })).toMatchObject({ error: { code: grpc.status.NOT_FOUND } });
      });
    }
    await withClient(spare.address, tokens.alice!, async (c) => {
      expect(await c.call('CancelOrder', { orderId: moved[0]!, reason: 'changed my mind' })).toMatchObject({ version: '2' });
    });
    // The ring database holds the stores' URLs, never their passwords.
    const registered = await onServer((c) => c.query<{ url: string }>('SELECT database_url AS url FROM shard_stores'), cluster.ringUrl);
    expect(registered.rows).toHaveLength(3);
    for (const r of registered.rows) {
      expect(r.url).toContain(shardUser);
      expect(r.url).not.toContain(dbPassword);
    }
  }, 120_000);

  it('never shows a token, key or password in a log line or a metric', async () => {
    const metrics = await Promise.all(metricsPorts.map(async (p) => (await fetch(`http://127.0.0.1:${p}/metrics`)).text()));
    const outputs = [cluster.router.output(), ...cluster.shards.map((s) => s.process.output()), ...metrics, ...cliOutput].join('\n');
    expect(outputs.length).toBeGreaterThan(1000);
    // The key material of every private key the processes were given (a PEM body line is 64 characters of base64).
    const privateKeys = Object.values(cluster.tls!.files).map((f) => readFileSync(f.keyFile, 'utf8').split('\n')[2]!);
    for (const secret of [dbPassword, redisPassword, snapshotKey, masterKey, ...Object.values(tokens), ...privateKeys]) {
      expect(secret.length).toBeGreaterThan(20);
      expect(outputs).not.toContain(secret);
    }
    for (const t of Object.values(tokens)) expect(outputs).not.toContain(t.split('.').pop()!);
  });
});
