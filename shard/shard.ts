/**
 * The composition root of a shard: builds the store, pipeline, gRPC server
 * and metrics from a `ShardConfig`, and tears them down in order.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { deciderRegistry, modules } from '../src/domain/index.js';
import { linkDefinition, loadPackageDefinition } from '../src/grpc/proto.js';
import { LINK_FRAMING_BYTES } from '../src/grpc/link-codec.js';
import { bind, serveHealthOnly } from '../src/grpc/server.js';
import { CertificateFiles, internalServicesGuard, serverCredentials } from '../src/grpc/tls.js';
import { createLogger, type Logger } from '../src/observability/logger.js';
import { startOrRelease, type Opened } from '../src/process.js';
import type { Tracer } from '../src/observability/tracing.js';
import { PipelineMetrics, createRegistry, serveMetricsAt } from '../src/observability/metrics.js';
import { ScopeAuthorizer } from '../src/auth/authorize.js';
import { createAuthenticator } from '../src/auth/authenticator.js';
import { authInterceptor } from '../src/auth/interceptor.js';
import { announceSecurityMode } from '../src/auth/mode.js';
import { permissionTable } from '../src/auth/permissions.js';
import { AggregateLoader } from '../src/pipeline/loader.js';
import { Snapshotter } from '../src/pipeline/snapshotter.js';
import { RedisSnapshotCache } from '../src/cache/redis-snapshot-cache.js';
import { PgSnapshotStore } from '../src/store/pg-snapshot-store.js';
import { AggregateCache } from '../src/pipeline/aggregate-cache.js';
import { SOLE_OWNER, type Ownership } from '../src/pipeline/ownership.js';
import { CommandPipeline } from '../src/pipeline/pipeline.js';
import { GroupCommitWriter, PgEventReader, SHARD_ROLE, bumpFence, claimStore, identityHealthService, mayRewriteEvents, migrate } from '../src/store/index.js';
import { StoreBreaker } from '../src/store/store-breaker.js';
import type { ShardConfig } from './config.js';
import { addShardServices } from './grpc-services.js';
import { addCommandStreamService } from './command-stream.js';
import { startShardRing } from './ring.js';
import { addRingService } from '../src/ring/service.js';
import { addSubscriptionServices } from './subscription-services.js';
import { PgFeedReader } from '../src/store/pg-feed-reader.js';
import { LiveTail } from '../src/subscriptions/live-tail.js';
import { PersonalData } from '../src/privacy/personal-data.js';
import { PgSubjectKeyStore } from '../src/privacy/key-store.js';
import { LocalKeyProvider } from '../src/privacy/key-provider.js';
import { SubjectKeys } from '../src/privacy/subject-keys.js';
import { Erasure } from '../src/privacy/erasure.js';
import { DATA_SUBJECT, dataSubject } from '../src/privacy/data-subject.js';
import { DATA_SUBJECT_SERVICE, addDataSubjectService } from './data-subject-service.js';

export interface RunningShard {
  /** The bound gRPC address (`host:port`, the real port when 0 was asked for). */
  readonly address: string;
  readonly metricsAddress: string | undefined;
  readonly pipeline: CommandPipeline;
  /** Graceful stop: NOT_SERVING, finish in-flight calls (up to the grace period), flush the writer, close pools. */
  close(): Promise<void>;
}

export interface ShardOverrides {
  readonly logger?: Logger;
  /** Replaces ownership by the ring (and the ring database is then not used). */
  readonly ownership?: Ownership;
  /** Traces commands with this tracer (`startTracing`); default: tracing off. */
  readonly tracer?: Tracer;
}

/**
 * Starts a shard; when start-up fails halfway, what it had opened (pools,
 * connections, ports, watchers) is released before the error is thrown.
 */
export async function startShard(config: ShardConfig, overrides: ShardOverrides = {}): Promise<RunningShard> {
  const logger = overrides.logger ?? createLogger(config.shardId, config.logLevel);
  return startOrRelease(
    (opened) => openShard(config, overrides, logger, opened),
    (err) => logger.warn({ err }, 'releasing what a failed start-up opened failed'),
  );
}

async function openShard(config: ShardConfig, overrides: ShardOverrides, logger: Logger, opened: Opened): Promise<RunningShard> {
  announceSecurityMode(config.auth, config.tls !== undefined, logger, `shard ${config.shardId}`);
  const authenticator = createAuthenticator(config.auth);
  // Read first: unusable certificate files stop the start-up before anything else is opened.
  const certificates = config.tls
    ? opened.add(
        new CertificateFiles(config.tls, {
          onReload: (subject) => logger.info({ subject }, 'TLS certificates reloaded'),
          onError: (err) => logger.error({ err: err.message }, 'changed TLS certificate files are not usable; the previous ones stay in use'),
        }),
        (c) => c.close(),
      )
    : undefined;
  await migrate(config.databaseUrl);
  // Before anything is served or registered: this store is this shard's, or the shard does not start.
  const identity = await claimStore(config.databaseUrl, config.shardId);
  // Without a ring database the shard owns everything at epoch 0 (single-shard mode).
  const ring = config.ring.databaseUrl && !overrides.ownership ? opened.add(await startShardRing(config, identity.storeId, logger), (r) => r.close()) : undefined;
  const ownership = overrides.ownership ?? ring?.ownership ?? SOLE_OWNER;

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
  const registry = createRegistry('shardwrite_shard_');
  const metrics = new PipelineMetrics(registry);
  const { tracer } = overrides;
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

  const cache = new AggregateCache({ maxEntries: config.cacheMaxEntries, maxBytes: config.cacheMaxBytes });
  // A new epoch may have moved aggregates: forget cached state, and fence older processes on this database out (I6).
  await ring?.follow({ onChange: () => cache.clear(), fence: (epoch) => bumpFence(pool, epoch) });
  // With a ring, an entry is written only while this shard owns its aggregate, under the epoch it was checked at (I6).
  const store = opened.add(
    new StoreBreaker(ring ? ring.ownership.guard(writer) : writer, pgReader, {
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
  const reader = store.reader;
  // Rehydration tiers (I8: each only a cache): PostgreSQL snapshots, and Redis in front when configured.
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
  const loader = new AggregateLoader(reader, cache, metrics, { snapshots: snapshotStore, snapshotCache, snapshotter, logger });
  const deciders = deciderRegistry(modules);
  deciders.set(DATA_SUBJECT, dataSubject);
  // Crypto-shredding: the subjects' keys live in the ring database, which every shard reads.
  const privacy = ring && config.personalData.encryption ? opened.add(await startPrivacy(config, logger), (p) => p.close()) : undefined;
  if (!privacy) {
    logger.warn(
      config.personalData.encryption
        ? 'no ring database: personal data is stored as decided, unencrypted, and subjects cannot be erased'
        : 'PERSONAL_DATA_ENCRYPTION=off: personal data is stored unencrypted',
    );
  }
  const authorizer = new ScopeAuthorizer();
  const pipeline = new CommandPipeline(
    {
      deciders,
      reader,
      appender: store.appender,
      loader,
      authorizer,
      ownership,
      metrics,
      logger,
      ...(tracer ? { tracer } : {}),
      ...(privacy ? { personalData: privacy.personalData } : {}),
      afterAppend: (streamId, decider, version, state) => snapshotter.afterAppend(streamId, decider, version, state),
    },
    config.pipeline,
  );

  const definition = loadPackageDefinition();
  const server = opened.add(
    new grpc.Server({
      // A router's link batches carry whole requests plus a little framing.
      'grpc.max_receive_message_length': config.maxMessageBytes + LINK_FRAMING_BYTES,
      'grpc.keepalive_permit_without_calls': 1,
      // Every call is authenticated and checked against the permission table first (deny by default).
      interceptors: [authInterceptor({ authenticator, permissions: permissionTable(modules), ...(config.tls ? { forwardedBy: config.linkIdentities } : {}) })],
    }),
    (s) => s.forceShutdown(),
  );
  addShardServices(server, {
    definition,
    maxMessageBytes: config.maxMessageBytes,
    modules,
    deciders,
    pipeline,
    reader,
    loader,
    ownership,
    metrics,
    logger,
    traced: tracer !== undefined,
    personalData: privacy?.personalData,
  });
  if (privacy) addDataSubjectService(server, { erasure: new Erasure({ ...privacy, pipeline, reader, logger }), logger });
  const commandStreams = addCommandStreamService(server, {
    definition,
    link: linkDefinition(),
    maxMessageBytes: config.maxMessageBytes,
    modules,
    pipeline,
    metrics,
    logger,
    ...(tracer ? { tracer } : {}),
    maxInFlight: config.streamMaxInFlight,
    overloadRetryAfterMs: config.pipeline.overloadRetryAfterMs,
  });
  // The ring this shard holds, for clients that send straight to the owner shards (only with a ring database).
  const closingRing = opened.add(new AbortController(), (c) => c.abort());
  const ringService = ring ? addRingService(server, { watcher: ring.watcher, logger, closing: closingRing.signal }) : undefined;
  const subscriptions = opened.add(addSubscriptionServices(server, { shardId: config.shardId, reader: feedReader, tail: liveTail, deciders, logger, personalData: privacy?.personalData }), (s) =>
    s.close(),
  );
  const health = new HealthImplementation({ '': 'SERVING' });
  for (const m of modules) health.setStatus(m.service, 'SERVING');
  health.setStatus('shardwrite.v1.EventStoreService', 'SERVING');
  health.setStatus('shardwrite.v1.CommandStreamService', 'SERVING');
  // Lets a rebalancer check that the process at this address is this shard on this store.
  health.setStatus(identityHealthService(config.shardId, identity.storeId), 'SERVING');
  for (const s of subscriptions.services) health.setStatus(s, 'SERVING');
  if (privacy) health.setStatus(DATA_SUBJECT_SERVICE, 'SERVING');
  if (ringService) health.setStatus(ringService, 'SERVING');
  health.addToServer(server);
  new ReflectionService(definition).addToServer(server);

  // At most one line a second: refused callers must not be able to flood the log.
  let lastRefusalLog = 0;
  const credentials = certificates
    ? serverCredentials(certificates, {
        // The router's link and ShardFeed: only TLS_LINK_IDENTITIES (mutual TLS); every other service takes any TLS caller.
        interceptors: [
          internalServicesGuard(config.linkIdentities, (path, identities) => {
            if (Date.now() - lastRefusalLog < 1000) return;
            lastRefusalLog = Date.now();
            logger.warn({ path, identities: identities.slice(0, 8) }, 'refused a call to an internal service: its client certificate is not allowed');
          }),
        ],
      })
    : grpc.ServerCredentials.createInsecure();
  const address = await bind(server, config.grpcAddress, credentials);
  const healthOnly = config.healthAddress ? opened.add(await serveHealthOnly(health, config.healthAddress), (h) => h.server.forceShutdown()) : undefined;

  const metricsServing = config.metricsAddress ? opened.add(await serveMetricsAt(registry, config.metricsAddress), (m) => new Promise((resolve) => m.server.close(resolve))) : undefined;
  const metricsServer: HttpServer | undefined = metricsServing?.server;
  const metricsAddress = metricsServing?.address;
  logger.info({ address, metricsAddress, shardId: config.shardId, tls: certificates ? certificates.subject : 'off', healthAddress: healthOnly?.address }, 'shard listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      logger.info('shard draining');
      health.setStatus('', 'NOT_SERVING');
      for (const m of modules) health.setStatus(m.service, 'NOT_SERVING');
      health.setStatus(identityHealthService(config.shardId, identity.storeId), 'NOT_SERVING');
      commandStreams.drain();
      subscriptions.close();
      closingRing.abort();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('grace period over: cancelling the calls still running');
          server.forceShutdown();
          resolve();
        }, config.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      healthOnly?.server.forceShutdown();
      await pipeline.drain();
      await snapshotter.close();
      await privacy?.close();
      await ring?.close();
      await writer.close();
      await pgReader.close();
      await feedReader.close();
      store.shutdown();
      await pool.end();
      await snapshotCache?.close();
      certificates?.close();
      await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
      logger.info('shard stopped');
    })());

  return { address, metricsAddress, pipeline, close };
}

/** The keys of the data subjects (ring database) and what seals and opens personal data with them. */
async function startPrivacy(config: ShardConfig, logger: Logger) {
  if (config.personalData.masterKeyIsDev) {
    logger.warn('PERSONAL_DATA_MASTER_KEY is not set: data keys are wrapped with the public development key (insecure mode only)');
  }
  const store = new PgSubjectKeyStore({
    connectionString: config.ring.databaseUrl!,
    onIdleError: (err) => logger.warn({ err }, 'idle subject-key database connection failed'),
  });
  const provider = new LocalKeyProvider(config.personalData.masterKey);
  const keys = new SubjectKeys(store, provider, logger, { ttlMs: config.personalData.keyTtlMs });
  await keys.start();
  return {
    store,
    provider,
    keys,
    personalData: new PersonalData(keys),
    async close() {
      await keys.close();
      await store.close();
    },
  };
}
