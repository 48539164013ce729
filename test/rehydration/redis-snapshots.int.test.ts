import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { DEV_SNAPSHOT_KEY, RedisSnapshotCache, signEntry } from '../../src/cache/redis-snapshot-cache.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { ADD, REDIS_URL, buildStack, count, flushPrefix, tally, tallyV2, uniquePrefix, type Stack } from './support.js';
import type { StoredSnapshot } from '../../src/store/types.js';

if (!REDIS_URL) console.log('[rehydration] REDIS_URL is not set: the Redis snapshot tests are skipped');

describe.skipIf(!REDIS_URL)('Redis snapshot cache', () => {
  const url = REDIS_URL!;
  const prefix = uniquePrefix();
  let db: TestDatabase;
  let stack: Stack;
  let raw: Redis;

  beforeAll(async () => {
    db = await createTestDatabase('sw_redis');
    // These tests are about what Redis holds, not about its latency: a read slower than the
    // default 50 ms (a loaded machine) would count as a timeout and hide what they check.
    // "when Redis misbehaves" below tests the timeout with a cache of its own.
    stack = await buildStack({ url: db.url, policy: { interval: 5 }, redis: { url, keyPrefix: prefix, timeoutMs: 5000 } });
    raw = new Redis(url);
  });

  afterAll(async () => {
    await stack?.close();
    await flushPrefix(url, prefix);
    raw?.disconnect();
    await db?.drop();
  });

  const newId = () => randomBytes(4).toString('hex');

  async function add(id: string, n: number) {
    const out = await stack.pipeline.execute(ADD, { id, count: n }, {});
    await stack.snapshotter.idle();
    return out;
  }

  async function cached(streamId: string): Promise<{ v: number; s: number; p: string; state: unknown } | undefined> {
    const value = await raw.get(prefix + streamId);
    return value === null ? undefined : JSON.parse(value);
  }

  async function positionOf(streamId: string, version: number): Promise<bigint> {
    const { rows } = await stack.pool.query('SELECT position::text AS p FROM events WHERE stream_id = $1 AND version = $2', [streamId, version]);
    return BigInt(rows[0].p);
  }

  it('writes each PostgreSQL snapshot through to Redis with the TTL, and serves the next cold load from it', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 6);
    expect(await cached(stream)).toMatchObject({ v: 6, s: 1, state: { total: 6 } });
    const ttl = await raw.ttl(prefix + stream);
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
    await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    const loaded = await stack.coldLoader().load(stream, tally);
    expect(loaded).toMatchObject({ tier: 'redis', version: 7, replayed: 1, state: { total: 7 }, snapshotVersion: 6 });
    expect(loaded.commandIds).toBeUndefined();
  });

  it('never lets a put replace a newer cached snapshot', async () => {
    const cache = stack.redis!;
    const base = { streamId: `tally-${newId()}`, aggregateType: 'tally', position: 1n };
    expect(await cache.put({ ...base, version: 10, schemaVersion: 1, state: { total: 10 } })).toBe(true);
    expect(await cache.put({ ...base, version: 9, schemaVersion: 1, state: { total: 9 } })).toBe(false);
    expect(await cache.put({ ...base, version: 10, schemaVersion: 1, state: { total: -1 } })).toBe(false);
    const results = await Promise.all([3, 14, 11, 12].map((version) => cache.put({ ...base, version, schemaVersion: 1, state: { total: version } })));
    expect(results).toEqual([false, true, expect.any(Boolean), expect.any(Boolean)]);
    expect(await cached(base.streamId)).toMatchObject({ v: 14, state: { total: 14 } });
    // The same version in a newer state schema does replace it (a new release re-snapshotting).
    expect(await cache.put({ ...base, version: 14, schemaVersion: 2, state: { count: 14 } })).toBe(true);
    expect(await cache.put({ ...base, version: 14, schemaVersion: 1, state: { total: 14 } })).toBe(false);
  });

  it('never prefers a stale Redis entry over a newer PostgreSQL snapshot', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 3);
    const position3 = await positionOf(stream, 3);
    await add(id, 5); // version 8: snapshot at 8 in PostgreSQL and Redis
    // Put back an older entry of this very history (version 3), with a state that would show if it were used.
    await raw.set(prefix + stream, signEntry(DEV_SNAPSHOT_KEY, JSON.stringify({ v: 3, s: 1, p: String(position3), id: stream, t: 'tally', state: { total: -1000 } })));
    await stack.pipeline.execute(ADD, { id, count: 1 }, {}); // 9

    const staleBefore = await count(stack.metrics.snapshotsSkipped, { tier: 'redis', reason: 'stale' });
    const loaded = await stack.coldLoader().load(stream, tally);
    expect(loaded).toMatchObject({ tier: 'snapshot', version: 9, replayed: 1, state: { total: 9 } });
    expect(await count(stack.metrics.snapshotsSkipped, { tier: 'redis', reason: 'stale' })).toBe(staleBefore + 1);
    // The load refilled Redis from PostgreSQL.
    await stack.snapshotter.idle();
    expect(await cached(stream)).toMatchObject({ v: 8, state: { total: 8 } });
  });

  it('ignores a Redis entry that is not of this stream history (another database, a moved stream)', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 2);
    const position = await positionOf(stream, 2);
    await raw.set(prefix + stream, signEntry(DEV_SNAPSHOT_KEY, JSON.stringify({ v: 2, s: 1, p: String(position + 1000n), id: stream, t: 'tally', state: { total: -5 } })));
    const before = await count(stack.metrics.snapshotsSkipped, { tier: 'redis', reason: 'foreign' });
    const loaded = await stack.coldLoader().load(stream, tally);
    expect(loaded).toMatchObject({ tier: 'replay', version: 2, state: { total: 2 } });
    expect(await count(stack.metrics.snapshotsSkipped, { tier: 'redis', reason: 'foreign' })).toBe(before + 1);
    // A value stored under another stream's key (or a reply meant for one) is a miss.
    await raw.set(prefix + stream, signEntry(DEV_SNAPSHOT_KEY, JSON.stringify({ v: 2, s: 1, p: String(position), id: 'tally-other', t: 'tally', state: { total: -5 } })));
    expect(await stack.redis!.get(stream)).toBeUndefined();
  });

  it('rejects and counts a Redis entry not written by a shard (no tag, or a tag made with another key), and decides on PostgreSQL', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 6); // snapshot at 6, in PostgreSQL and (signed) in Redis
    expect(await stack.coldLoader().load(stream, tally)).toMatchObject({ tier: 'redis', version: 6 });
    const position = String(await positionOf(stream, 6));
    const forged = JSON.stringify({ v: 6, s: 1, p: position, id: stream, t: 'tally', state: { total: 1000 } });
    const rejected = () => count(stack.metrics.snapshotCacheOps, { op: 'get', outcome: 'rejected' });
    for (const planted of [forged, signEntry('an attacker key that is long enough, 32+', forged), (await raw.get(prefix + stream))!.replace('"total":6', '"total":1000')]) {
      await raw.set(prefix + stream, planted);
      const before = await rejected();
      const loaded = await stack.coldLoader().load(stream, tally);
      expect(loaded.tier).not.toBe('redis');
      expect(loaded).toMatchObject({ version: 6, state: { total: 6 } });
      expect(await rejected()).toBe(before + 1);
    }
    // The owner decides the next command on PostgreSQL's state (total 6), not on the planted one (1000).
    stack.ownerCache.clear();
    await stack.pipeline.execute(ADD, { id, count: 1 }, {});
    const { rows } = await stack.pool.query(`SELECT data->>'n' AS n FROM events WHERE stream_id = $1 AND version = 7`, [stream]);
    expect(rows).toEqual([{ n: '7' }]);
    expect(stack.logs.some((l) => l.msg.includes('rejected a Redis snapshot entry') && !JSON.stringify(l).includes('1000'))).toBe(true);
  });

  it('connects with ACL credentials in the URL, and never logs the password (not even when it is wrong)', async () => {
    const user = `sw_acl_${randomBytes(4).toString('hex')}`;
    const password = `pw-${randomBytes(12).toString('hex')}`;
    await raw.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${prefix}*`, '+get', '+set', '+expire', '+eval', '+evalsha', '+script|load', '+ping', '+quit');
    try {
      const withUser = new URL(url);
      withUser.username = user;
      withUser.password = password;
      const lines: string[] = [];
      const logger = (await import('pino')).default({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
      const cache = new RedisSnapshotCache({ url: withUser.toString(), keyPrefix: prefix, logger });
      expect(await cache.waitUntilReady(2000)).toBe(true);
      const snap = { streamId: `tally-${newId()}`, aggregateType: 'tally', version: 3, schemaVersion: 1, position: 1n, state: { total: 3 } };
      expect(await cache.put(snap)).toBe(true);
      expect(await cache.get(snap.streamId)).toMatchObject({ version: 3, state: { total: 3 } });
      await cache.close();
      const wrong = new URL(withUser);
      wrong.password = `${password}-wrong`;
      const refused = new RedisSnapshotCache({ url: wrong.toString(), keyPrefix: prefix, logger });
      expect(await refused.waitUntilReady(500)).toBe(false);
      expect(await refused.get(snap.streamId)).toBeUndefined();
      await refused.close();
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(password);
    } finally {
      await raw.call('ACL', 'DELUSER', user);
    }
  });

  it('skips a Redis snapshot of another state schema and counts it', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    await add(id, 5); // snapshot at 5 in schema 1, in PostgreSQL and Redis
    expect(await cached(stream)).toMatchObject({ v: 5, s: 1 });
    const before = await count(stack.metrics.snapshotsSkipped, { tier: 'redis', reason: 'schema' });
    const loaded = await stack.coldLoader().load(stream, tallyV2);
    expect(loaded).toMatchObject({ tier: 'replay', version: 5, state: { count: 5, last: 5 } });
    expect(await count(stack.metrics.snapshotsSkipped, { tier: 'redis', reason: 'schema' })).toBe(before + 1);
    expect(await count(stack.metrics.snapshotsSkipped, { tier: 'postgres', reason: 'schema' })).toBeGreaterThan(0);
  });

  it('decides the same after Redis is flushed and every snapshot deleted', async () => {
    const id = newId();
    const stream = `tally-${id}`;
    for (let i = 0; i < 5; i++) await add(id, 3);
    const before = await stack.coldLoader().load(stream, tally);
    expect(before.tier).toBe('redis');
    await flushPrefix(url, prefix);
    await stack.pool.query('DELETE FROM snapshots');
    const after = await stack.coldLoader().load(stream, tally);
    expect(after).toMatchObject({ tier: 'replay', version: before.version, state: before.state });
  });

  describe('when Redis misbehaves', () => {
    let proxy: TcpProxy;
    let cache: RedisSnapshotCache;
    const snap = (version: number): StoredSnapshot => ({
      streamId: 'tally-proxy',
      aggregateType: 'tally',
      version,
      schemaVersion: 1,
      position: BigInt(version),
      state: { total: version },
    });

    beforeAll(async () => {
      const target = new URL(url);
      proxy = await startTcpProxy(`${target.hostname}:${target.port || 6379}`);
      const viaProxy = new URL(url);
      viaProxy.host = proxy.address;
      cache = new RedisSnapshotCache({ url: viaProxy.toString(), keyPrefix: prefix, timeoutMs: 50, breakerResetMs: 300 });
      expect(await cache.waitUntilReady(2000)).toBe(true);
    });

    afterAll(async () => {
      await cache?.close();
      await proxy?.close();
    });

    /** Runs `n` gets and returns the slowest, asserting every one resolved to a miss. */
    async function slowestMiss(n: number): Promise<number> {
      let slowest = 0;
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        expect(await cache.get('tally-proxy')).toBeUndefined();
        slowest = Math.max(slowest, performance.now() - t0);
      }
      return slowest;
    }

    it('fails open within its timeout when Redis stalls, opens its breaker, and recovers', async () => {
      expect(await cache.put(snap(1))).toBe(true);
      expect((await cache.get('tally-proxy'))?.version).toBe(1);
      proxy.pause();
      expect(await slowestMiss(8)).toBeLessThan(250);
      expect(cache.bypassed).toBe(true);
      expect(await cache.put(snap(2))).toBe(false);
      proxy.resume();
      await new Promise((r) => setTimeout(r, 400));
      expect((await cache.get('tally-proxy'))?.version).toBe(1);
      expect(cache.bypassed).toBe(false);
    });

    it('fails open when packets are dropped and when the connection is cut, then reconnects', async () => {
      proxy.blackhole();
      expect(await slowestMiss(6)).toBeLessThan(250);
      proxy.cut();
      expect(await slowestMiss(6)).toBeLessThan(250);
      proxy.resume();
      expect(await cache.waitUntilReady(3000)).toBe(true);
      await new Promise((r) => setTimeout(r, 400));
      expect((await cache.get('tally-proxy'))?.version).toBe(1);
    });
  });
});
