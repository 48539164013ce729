/**
 * Fault 3: Redis goes away mid-load and comes back. The shards reach the
 * machine's Redis (REDIS_URL) through a test-only TCP proxy, which is cut
 * (Redis stopped: connections reset, new ones refused), restored, then made a
 * black hole (Redis hung: nothing comes back) and restored again. The
 * machine's Redis itself is never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { startLoad } from '../support/ledger.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { sleep } from './support/scenario.js';
import { expectIntact, loadOptions, phases, settle, type Finished } from './support/scenario.js';

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) console.log('[faults] 3 Redis outage: skipped, REDIS_URL is not set');

describe.skipIf(!redisUrl)('Redis stopped and restarted under load', () => {
  let proxy: TcpProxy;
  let cluster: Cluster;
  let result: Finished;
  let cachedKeys = 0;
  const keyPrefix = `sw:faults:${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    const target = new URL(redisUrl!);
    proxy = await startTcpProxy(`${target.hostname}:${target.port || '6379'}`);
    const viaProxy = new URL(redisUrl!);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    cluster = await startCluster({
      shards: 3,
      shardEnv: () => ({
        REDIS_URL: viaProxy.toString(),
        REDIS_KEY_PREFIX: keyPrefix,
        // Snapshot often and keep nothing in memory, so every load asks Redis first.
        SNAPSHOT_INTERVAL: '3',
        CACHE_MAX_ENTRIES: '0',
        REDIS_BREAKER_RESET_MS: '500',
      }),
    });
    const p = phases(8, { before: 2, fault: 3, after: 3 });
    const run = startLoad(loadOptions(cluster, 'redis'));
    const marks: Record<string, number> = {};

    await sleep(p.before);
    marks.cutAt = run.ledger.mark('cut-start');
    proxy.cut();
    await sleep(p.fault);
    proxy.resume();
    marks.cutEnd = run.ledger.mark('cut-end');
    await sleep(p.after);
    marks.holeAt = run.ledger.mark('blackhole-start');
    proxy.blackhole();
    await sleep(p.fault);
    proxy.resume();
    marks.holeEnd = run.ledger.mark('blackhole-end');
    await sleep(p.after);

    result = await settle('3 Redis cut + black hole', cluster, run, (l) => ({
      'cut-ms': marks.cutEnd! - marks.cutAt!,
      'blackholed-ms': marks.holeEnd! - marks.holeAt!,
      'slowest-ms': l.slowest().ms,
      'recovery-after-cut-ms': l.recoveryMs(marks.cutEnd!),
      'recovery-after-blackhole-ms': l.recoveryMs(marks.holeEnd!),
    }));
    const redis = new Redis(redisUrl!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const keys = await redis.keys(`${keyPrefix}*`);
      cachedKeys = keys.length;
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  }, 240_000);

  afterAll(async () => {
    await cluster?.close();
    await proxy?.close();
  });

  it('the snapshot cache was in use', () => {
    expect(cachedKeys).toBeGreaterThan(0);
  });

  it('no client sees any error at all', () => {
    expect(result.ledger.errors()).toEqual({});
  });

  it('loses nothing acknowledged and duplicates nothing', () => {
    expectIntact(result, cluster);
  });
});
