/**
 * A shard's storage, opened in order at start-up: the read pool, the
 * group-commit writer, the feed and its live tail; the breaker in front of
 * them; and the load tiers over them. Each step registers what it opened, so
 * a start-up failing halfway releases it.
 */
import pg from 'pg';
import { readFileSync } from 'node:fs';
import type { Logger } from '../src/observability/logger.js';
import type { Opened } from '../src/process.js';
import type { Tracer } from '../src/observability/tracing.js';
import type { PipelineMetrics } from '../src/observability/metrics.js';
import { AggregateLoader } from '../src/pipeline/loader.js';
import { Snapshotter } from '../src/pipeline/snapshotter.js';
import { RedisSnapshotCache } from '../src/cache/redis-snapshot-cache.js';
import { PgSnapshotStore } from '../src/store/pg-snapshot-store.js';
import type { AggregateCache } from '../src/pipeline/aggregate-cache.js';
import type { Ownership } from '../src/pipeline/ownership.js';
import { GroupCommitWriter, PgEventReader, SHARD_ROLE, mayRewriteEvents } from '../src/store/index.js';
import { StoreBreaker } from '../src/store/store-breaker.js';
import { PgFeedReader } from '../src/store/pg-feed-reader.js';
import { LiveTail } from '../src/subscriptions/live-tail.js';
import type { ShardConfig } from './config.js';
import type { ShardRing } from './ring.js';

/** What reads and writes this shard's PostgreSQL: the read pool, the group-commit writer, the feed and its live tail. */
export interface Storage {
  readonly pool: pg.Pool;
  readonly pgReader: PgEventReader;
  readonly feedReader: PgFeedReader;
  readonly liveTail: LiveTail;
  readonly writer: GroupCommitWriter;
}

export async function openStorage(
  config: ShardConfig,
  deps: { ownership: Ownership; ring: ShardRing | undefined; metrics: PipelineMetrics; logger: Logger; tracer: Tracer | undefined },
  opened: Opened,
): Promise<Storage> {
  const { ownership, ring, metrics, logger, tracer } = deps;
  const pool = opened.add(
    new pg.Pool({
      connectionString: config.databaseUrl,
      max: config.dbPoolSize,
      statement_timeout: config.statementTimeoutMs,
      query_timeout: config.statementTimeoutMs + 1000,
      connectionTimeoutMillis: config.statementTimeoutMs,
    }),
    (p) => p.end(),
  );
  // An idle client's error (the server went away) must not crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection failed'));
  if (!config.auth.insecure && (await mayRewriteEvents(pool))) {
    logger.warn({ leastPrivilege: false }, `this shard's database login may UPDATE and DELETE events: run shards as a login IN ROLE ${SHARD_ROLE}, which can only append (README "Database roles")`);
  }
  const pgReader = opened.add(new PgEventReader(pool), (r) => r.close());
  // Its own small pool: the feed's statements plan once (see FEED_SESSION_OPTIONS), and catch-up reads never take the pipeline's connections.
  const feedReader = opened.add(new PgFeedReader({ connectionString: config.databaseUrl, statementTimeoutMs: config.statementTimeoutMs }), (r) => r.close());
  // Subscribers share one live tail; the writer wakes it after each commit.
  const liveTail = new LiveTail(feedReader, { logger, coalesceMs: config.tailCoalesceMs });
  const writer = opened.add(
    new GroupCommitWriter({
      ...(tracer ? { tracer } : {}),
      connectionString: config.databaseUrl,
      epoch: () => ownership.epoch(),
      // With a ring, the writer tells the store which of its entries a rebalance under way moves away.
      pendingMove: ring ? () => ring.ownership.pendingMove() : undefined,
      maxBatchEntries: config.batchMaxEntries,
      maxBatchBytes: config.batchMaxBytes,
      statementTimeoutMs: config.statementTimeoutMs,
      logger,
      onBatch: (entries) => metrics.batchEntries.observe(entries),
      onCommitted: () => liveTail.notify(),
    }),
    (w) => w.close(),
  );
  return { pool, pgReader, feedReader, liveTail, writer };
}

/** The breaker in front of PostgreSQL; with a ring, an entry is written only while this shard owns its aggregate, under the epoch it was checked at (I6). */
export function openStoreBreaker(config: ShardConfig, ring: ShardRing | undefined, storage: Storage, deps: { metrics: PipelineMetrics; logger: Logger }, opened: Opened): StoreBreaker {
  const { metrics, logger } = deps;
  return opened.add(
    new StoreBreaker(ring ? ring.ownership.guard(storage.writer) : storage.writer, storage.pgReader, {
      callTimeoutMs: config.storeBreaker.callTimeoutMs,
      resetTimeoutMs: config.storeBreaker.resetTimeoutMs,
      windowMs: config.storeBreaker.windowMs,
      onStateChange: (state) => {
        metrics.storeBreakerOpen.set(state === 'open' ? 1 : 0);
        logger.warn({ state }, 'event store circuit breaker changed state');
      },
    }),
    (b) => b.shutdown(),
  );
}

/** The load tiers (I8: each only a cache): PostgreSQL snapshots, Redis in front when configured, and what takes snapshots. */
export interface Rehydration {
  readonly snapshotCache: RedisSnapshotCache | undefined;
  readonly snapshotter: Snapshotter;
  readonly loader: AggregateLoader;
}

export async function openRehydration(
  config: ShardConfig,
  deps: { store: StoreBreaker; pool: pg.Pool; cache: AggregateCache; metrics: PipelineMetrics; logger: Logger },
  opened: Opened,
): Promise<Rehydration> {
  const { store, pool, cache, metrics, logger } = deps;
  const snapshotStore = store.guardSnapshots(new PgSnapshotStore(pool));
  const snapshotCache = config.redisUrl
    ? opened.add(
        new RedisSnapshotCache({
          url: config.redisUrl,
          ...(config.redisCaFile ? { tlsCa: readFileSync(config.redisCaFile) } : {}),
          ttlSeconds: config.redisSnapshotTtlSeconds,
          timeoutMs: config.redisTimeoutMs,
          keyPrefix: config.redisKeyPrefix,
          breakerResetMs: config.redisBreakerResetMs,
          authKey: config.redisSnapshotKey,
          metrics,
          logger,
        }),
        (c) => c.close(),
      )
    : undefined;
  if (snapshotCache && config.redisSnapshotKeyIsDev) {
    logger.warn('REDIS_SNAPSHOT_KEY is not set: Redis snapshot entries are authenticated with the public development key (insecure mode only)');
  }
  if (snapshotCache && !(await snapshotCache.waitUntilReady(1000))) logger.warn('redis is not reachable yet: loads use PostgreSQL');
  const snapshotter = opened.add(new Snapshotter({ store: snapshotStore, cache: snapshotCache, ownerCache: cache, metrics, logger }, { policy: config.snapshots }), (s) => s.close());
  const loader = new AggregateLoader(store.reader, cache, metrics, { snapshots: snapshotStore, snapshotCache, snapshotter, logger });
  return { snapshotCache, snapshotter, loader };
}
