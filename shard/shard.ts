/**
 * The composition root of a shard: builds the store, pipeline, gRPC server
 * and metrics from a `ShardConfig`, and tears them down in order.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import type { Server as HttpServer } from 'node:http';
import { deciderRegistry, modules } from '../src/domain/index.js';
import { linkDefinition, loadPackageDefinition } from '../src/grpc/proto.js';
import { LINK_FRAMING_BYTES } from '../src/grpc/link-codec.js';
import { bind, serveHealthOnly, shutdownWithin } from '../src/grpc/server.js';
import { internalServicesGuard, loggedCertificateFiles, serverCredentials, type CertificateFiles } from '../src/grpc/tls.js';
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
import { AggregateCache } from '../src/pipeline/aggregate-cache.js';
import { SOLE_OWNER, type Ownership } from '../src/pipeline/ownership.js';
import { CommandPipeline } from '../src/pipeline/pipeline.js';
import { bumpFence, claimStore, identityHealthService, migrate } from '../src/store/index.js';
import { StoreBreaker } from '../src/store/store-breaker.js';
import type { ShardConfig } from './config.js';
import { addShardServices } from './grpc-services.js';
import { addCommandStreamService, type CommandStreams } from './command-stream.js';
import { startShardRing, type ShardRing } from './ring.js';
import { openRehydration, openStorage, openStoreBreaker, type Rehydration, type Storage } from './storage.js';
import { addRingService } from '../src/ring/service.js';
import { addSubscriptionServices } from './subscription-services.js';
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
  const certificates = openCertificates(config, logger, opened);
  await migrate(config.databaseUrl);
  // Before anything is served or registered: this store is this shard's, or the shard does not start.
  const identity = await claimStore(config.databaseUrl, config.shardId);
  // Without a ring database the shard owns everything at epoch 0 (single-shard mode).
  const ring = config.ring.databaseUrl && !overrides.ownership ? opened.add(await startShardRing(config, identity.storeId, logger), (r) => r.close()) : undefined;
  const ownership = overrides.ownership ?? ring?.ownership ?? SOLE_OWNER;
  const registry = createRegistry('shardwrite_shard_');
  const metrics = new PipelineMetrics(registry);
  const { tracer } = overrides;
  const storage = await openStorage(config, { ownership, ring, metrics, logger, tracer }, opened);
  const cache = new AggregateCache({ maxEntries: config.cacheMaxEntries, maxBytes: config.cacheMaxBytes });
  // A new epoch may have moved aggregates: forget cached state, and fence older processes on this database out (I6).
  await ring?.follow({ onChange: () => cache.clear(), fence: (epoch) => bumpFence(storage.pool, epoch) });
  const store = openStoreBreaker(config, ring, storage, { metrics, logger }, opened);
  const rehydration = await openRehydration(config, { store, pool: storage.pool, cache, metrics, logger }, opened);
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
  const { snapshotter, loader } = rehydration;
  const pipeline = new CommandPipeline(
    {
      deciders,
      reader: store.reader,
      appender: store.appender,
      loader,
      authorizer: new ScopeAuthorizer(),
      ownership,
      metrics,
      logger,
      ...(tracer ? { tracer } : {}),
      ...(privacy ? { personalData: privacy.personalData } : {}),
      afterAppend: (streamId, decider, version, state) => snapshotter.afterAppend(streamId, decider, version, state),
    },
    config.pipeline,
  );
  const served = createShardServer(config, { authenticator, deciders, pipeline, store, loader, ownership, ring, privacy, storage, metrics, logger, tracer }, opened);
  const health = shardHealth(config, identity.storeId, served, privacy !== undefined);
  health.addToServer(served.server);
  const address = await bind(served.server, config.grpcAddress, shardCredentials(config, certificates, logger));
  const healthOnly = config.healthAddress ? opened.add(await serveHealthOnly(health, config.healthAddress), (h) => h.server.forceShutdown()) : undefined;
  const metricsServing = config.metricsAddress ? opened.add(await serveMetricsAt(registry, config.metricsAddress), (m) => new Promise((resolve) => m.server.close(resolve))) : undefined;
  const metricsAddress = metricsServing?.address;
  logger.info({ address, metricsAddress, shardId: config.shardId, tls: certificates ? certificates.subject : 'off', healthAddress: healthOnly?.address }, 'shard listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= closeShard(config, identity.storeId, logger, {
      health,
      served,
      healthOnly: healthOnly?.server,
      pipeline,
      rehydration,
      privacy,
      ring,
      storage,
      store,
      certificates,
      metricsServer: metricsServing?.server,
    }));
  return { address, metricsAddress, pipeline, close };
}

/** TLS_CERT_FILE & co, read and watched for changes; `undefined` without TLS. */
function openCertificates(config: ShardConfig, logger: Logger, opened: Opened): CertificateFiles | undefined {
  return config.tls ? opened.add(loggedCertificateFiles(config.tls, logger), (c) => c.close()) : undefined;
}

type Privacy = Awaited<ReturnType<typeof startPrivacy>>;

/** The gRPC server with every service of the shard added (not yet bound), and what its drain needs. */
interface ShardServer {
  readonly server: grpc.Server;
  readonly commandStreams: CommandStreams;
  readonly subscriptions: { services: string[]; close(): void };
  readonly ringService: string | undefined;
  /** Aborted on close: ends the ring watches. */
  readonly closingRing: AbortController;
}

function createShardServer(
  config: ShardConfig,
  deps: {
    authenticator: ReturnType<typeof createAuthenticator>;
    deciders: ReturnType<typeof deciderRegistry>;
    pipeline: CommandPipeline;
    store: StoreBreaker;
    loader: AggregateLoader;
    ownership: Ownership;
    ring: ShardRing | undefined;
    privacy: Privacy | undefined;
    storage: Storage;
    metrics: PipelineMetrics;
    logger: Logger;
    tracer: Tracer | undefined;
  },
  opened: Opened,
): ShardServer {
  const { deciders, pipeline, store, ownership, ring, privacy, metrics, logger, tracer } = deps;
  const definition = loadPackageDefinition();
  const server = opened.add(
    new grpc.Server({
      // A router's link batches carry whole requests plus a little framing.
      'grpc.max_receive_message_length': config.maxMessageBytes + LINK_FRAMING_BYTES,
      'grpc.keepalive_permit_without_calls': 1,
      // Every call is authenticated and checked against the permission table first (deny by default).
      interceptors: [authInterceptor({ authenticator: deps.authenticator, permissions: permissionTable(modules), ...(config.tls ? { forwardedBy: config.linkIdentities } : {}) })],
    }),
    (s) => s.forceShutdown(),
  );
  const reader = store.reader;
  const personalData = privacy?.personalData;
  addShardServices(server, {
    definition,
    maxMessageBytes: config.maxMessageBytes,
    modules,
    deciders,
    pipeline,
    reader,
    loader: deps.loader,
    ownership,
    metrics,
    logger,
    traced: tracer !== undefined,
    personalData,
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
  const { feedReader, liveTail } = deps.storage;
  const subscriptions = opened.add(addSubscriptionServices(server, { shardId: config.shardId, reader: feedReader, tail: liveTail, deciders, logger, personalData }), (s) => s.close());
  new ReflectionService(definition).addToServer(server);
  return { server, commandStreams, subscriptions, ringService, closingRing };
}

/** `grpc.health.v1` for every service the shard serves, and its identity (a rebalancer checks that this address is this shard on this store). */
function shardHealth(config: ShardConfig, storeId: string, served: ShardServer, privacy: boolean): HealthImplementation {
  const health = new HealthImplementation({ '': 'SERVING' });
  for (const m of modules) health.setStatus(m.service, 'SERVING');
  health.setStatus('shardwrite.v1.EventStoreService', 'SERVING');
  health.setStatus('shardwrite.v1.CommandStreamService', 'SERVING');
  health.setStatus(identityHealthService(config.shardId, storeId), 'SERVING');
  for (const s of served.subscriptions.services) health.setStatus(s, 'SERVING');
  if (privacy) health.setStatus(DATA_SUBJECT_SERVICE, 'SERVING');
  if (served.ringService) health.setStatus(served.ringService, 'SERVING');
  return health;
}

/** TLS with the internal services kept to TLS_LINK_IDENTITIES, or plaintext without certificates. */
function shardCredentials(config: ShardConfig, certificates: CertificateFiles | undefined, logger: Logger): grpc.ServerCredentials {
  if (!certificates) return grpc.ServerCredentials.createInsecure();
  // At most one line a second: refused callers must not be able to flood the log.
  let lastRefusalLog = 0;
  return serverCredentials(certificates, {
    // The router's link and ShardFeed: only TLS_LINK_IDENTITIES (mutual TLS); every other service takes any TLS caller.
    interceptors: [
      internalServicesGuard(config.linkIdentities, (path, identities) => {
        if (Date.now() - lastRefusalLog < 1000) return;
        lastRefusalLog = Date.now();
        logger.warn({ path, identities: identities.slice(0, 8) }, 'refused a call to an internal service: its client certificate is not allowed');
      }),
    ],
  });
}

/** Graceful stop: NOT_SERVING, finish in-flight calls (up to the grace period), then flush and close in dependency order. */
async function closeShard(
  config: ShardConfig,
  storeId: string,
  logger: Logger,
  parts: {
    health: HealthImplementation;
    served: ShardServer;
    healthOnly: grpc.Server | undefined;
    pipeline: CommandPipeline;
    rehydration: Rehydration;
    privacy: Privacy | undefined;
    ring: ShardRing | undefined;
    storage: Storage;
    store: StoreBreaker;
    certificates: CertificateFiles | undefined;
    metricsServer: HttpServer | undefined;
  },
): Promise<void> {
  const { health, served, storage, metricsServer } = parts;
  logger.info('shard draining');
  health.setStatus('', 'NOT_SERVING');
  for (const m of modules) health.setStatus(m.service, 'NOT_SERVING');
  health.setStatus(identityHealthService(config.shardId, storeId), 'NOT_SERVING');
  served.commandStreams.drain();
  served.subscriptions.close();
  served.closingRing.abort();
  await shutdownWithin(served.server, config.shutdownGraceMs, () => logger.warn('grace period over: cancelling the calls still running'));
  parts.healthOnly?.forceShutdown();
  await parts.pipeline.drain();
  await parts.rehydration.snapshotter.close();
  await parts.privacy?.close();
  await parts.ring?.close();
  await storage.writer.close();
  await storage.pgReader.close();
  await storage.feedReader.close();
  parts.store.shutdown();
  await storage.pool.end();
  await parts.rehydration.snapshotCache?.close();
  parts.certificates?.close();
  await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
  logger.info('shard stopped');
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
