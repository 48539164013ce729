/**
 * The composition root of a router: ring watcher, shard channels and
 * breakers, the pass-through gRPC services, health, reflection and metrics,
 * built from a `RouterConfig` and torn down in order.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { linkDefinition, loadPackageDefinition } from '../src/grpc/proto.js';
import { createAuthenticator } from '../src/auth/authenticator.js';
import { authInterceptor } from '../src/auth/interceptor.js';
import { announceSecurityMode } from '../src/auth/mode.js';
import { permissionTable } from '../src/auth/permissions.js';
import { modules } from '../src/domain/index.js';
import { channelCredentials, loggedCertificateFiles, serverCredentials } from '../src/grpc/tls.js';
import { serveHealthOnly, shutdownWithin } from '../src/grpc/server.js';
import { createLogger, type Logger } from '../src/observability/logger.js';
import { startOrRelease, type Opened } from '../src/process.js';
import type { Tracer } from '../src/observability/tracing.js';
import { createRegistry, serveMetricsAt } from '../src/observability/metrics.js';
import type { Registry } from 'prom-client';
import { PgRingStore, RingWatcher } from '../src/ring/index.js';
import { RING_SERVICE, addRingService } from '../src/ring/service.js';
import { Admission } from './admission.js';
import type { RouterConfig } from './config.js';
import { listen } from './listener.js';
import { RouterMetrics } from './metrics.js';
import { addProxyServices } from './proxy.js';
import type { ClusterFeeds as GroupFeeds } from './consumer-groups/feeds.js';
import { addConsumerGroupService } from './consumer-groups/service.js';
import { ReadGates } from './read-gate.js';
import { ReceiveSlots } from './receive-slots.js';
import { buildRoutingTable, loadProtoRoot, type MethodRoute } from '../src/grpc/routing-keys.js';
import { StreamMux } from './stream-mux.js';
import { ShardLinks, linkedCommands } from './shard-links.js';
import { ShardPool } from './shard-pool.js';
import { ClusterFeeds } from './subscriptions/cluster-feed.js';
import { SUBSCRIPTION_SERVICE, addSubscriptionService } from './subscriptions/service.js';

export interface RunningRouter {
  /** The bound gRPC address (`host:port`, the real port when 0 was asked for). */
  readonly address: string;
  readonly metricsAddress: string | undefined;
  /** The ring watcher (tests and tools read the epoch the router routes by). */
  readonly watcher: RingWatcher;
  /** Graceful stop: NOT_SERVING, finish in-flight calls (up to the grace period), close channels. */
  close(): Promise<void>;
}

export interface RouterOverrides {
  readonly logger?: Logger;
  /** What consumer groups read instead of the router's own merge of the shards (tests). */
  readonly clusterFeeds?: GroupFeeds;
  /** Traces commands with this tracer (`startTracing`); default: tracing off. */
  readonly tracer?: Tracer;
}

/**
 * Starts a router. It serves as soon as it listens; health says SERVING only
 * while it has a ring and at least one shard is reachable, and calls made
 * before the ring exists get UNAVAILABLE / SHARD_UNAVAILABLE.
 *
 * @throws when the ring database cannot be reached at start-up, the proto
 *   definitions mark routing keys wrongly, or the address cannot be bound.
 */
export async function startRouter(config: RouterConfig, overrides: RouterOverrides = {}): Promise<RunningRouter> {
  const logger = overrides.logger ?? createLogger('router', config.logLevel);
  // When start-up fails halfway, what it had opened is released before the error is thrown.
  return startOrRelease(
    (opened) => openRouter(config, overrides, logger, opened),
    (err) => logger.warn({ err }, 'releasing what a failed start-up opened failed'),
  );
}

async function openRouter(config: RouterConfig, overrides: RouterOverrides, logger: Logger, opened: Opened): Promise<RunningRouter> {
  announceSecurityMode(config.auth, config.tls !== undefined, logger, 'the router');
  if (!config.ring.databaseUrl) throw new Error('the router needs RING_DATABASE_URL');
  // One certificate for both sides: served to clients, and presented to the shards as the router's identity.
  const certificates = config.tls ? opened.add(loggedCertificateFiles(config.tls, logger), (c) => c.close()) : undefined;
  const shardCredentials = certificates ? channelCredentials(certificates) : grpc.credentials.createInsecure();
  const registry = createRegistry('shardwrite_router_');
  const metrics = new RouterMetrics(registry);
  const { store, watcher } = await openRing(config, config.ring.databaseUrl, logger, opened);
  const health = new RouterHealth(logger, () => watcher.view !== undefined && pool.anyReachable());
  const pool = opened.add(
    new ShardPool({ credentials: shardCredentials, breaker: config.breaker, reconnectMaxMs: config.shardReconnectMaxMs, metrics, logger, onChange: () => health.update() }),
    (p) => p.close(),
  );
  watcher.onChange((view) => {
    metrics.ringEpoch.set(view.epoch);
    pool.sync(view.shards);
  });
  const view = await watcher.start();
  if (!view) logger.warn('the ring database has no ring yet: calls fail with SHARD_UNAVAILABLE until one is published');

  const gates = new ReadGates();
  const admission = new Admission({ ...config.limits, retryAfterMs: config.overloadRetryAfterMs });
  const server = createRouterServer(config, gates, admission);
  const { tracer } = overrides;
  const links = opened.add(new ShardLinks({ link: linkDefinition(), watcher, pool, metrics, logger, admission, stallMs: config.limits.shardStallMs, ...(tracer ? { tracer } : {}) }), (l) => l.close());
  const definition = loadPackageDefinition();
  const served = await addRouterServices(
    server,
    config,
    { watcher, store, pool, links, gates, admission, metrics, registry, logger, tracer, shardCredentials, clusterFeeds: overrides.clusterFeeds, databaseUrl: config.ring.databaseUrl, definition },
    opened,
  );
  health.serve(server, served.services);
  new ReflectionService(definition).addToServer(server);

  const listener = opened.add(await listen(server, config.grpcAddress, config.limits.maxConnections, certificates ? serverCredentials(certificates) : undefined), (l) => {
    l.close();
    server.forceShutdown();
  });
  const address = listener.address;
  const healthOnly = config.healthAddress ? opened.add(await serveHealthOnly(health.health, config.healthAddress), (h) => h.server.forceShutdown()) : undefined;
  const metricsServing = config.metricsAddress ? opened.add(await serveMetricsAt(registry, config.metricsAddress), (m) => new Promise((resolve) => m.server.close(resolve))) : undefined;
  const metricsAddress = metricsServing?.address;
  logger.info({ address, metricsAddress, epoch: watcher.epoch, services: served.services, tls: certificates ? certificates.subject : 'off', healthAddress: healthOnly?.address }, 'router listening');

  let closing: Promise<void> | undefined;
  const close = async () => {
    closing ??= (async () => {
      logger.info('router draining');
      health.drain();
      for (const mux of served.muxes) mux.drain();
      listener.close();
      served.closingSubscriptions.abort();
      // Members are told to join again elsewhere, after their acks are written and leases released.
      await served.groups.close();
      await shutdownWithin(server, config.shutdownGraceMs, () => logger.warn('grace period over: cancelling the calls still running'));
      healthOnly?.server.forceShutdown();
      links.close();
      served.feeds.close();
      pool.close();
      await watcher.close();
      await store.close();
      certificates?.close();
      await new Promise<void>((resolve) => (metricsServing ? metricsServing.server.close(() => resolve()) : resolve()));
      logger.info('router stopped');
    })();
    return closing;
  };
  return { address, metricsAddress, watcher, close };
}

/** The ring database (migrated, bootstrapped when RING_BOOTSTRAP says so) and the watcher that follows it. */
async function openRing(config: RouterConfig, databaseUrl: string, logger: Logger, opened: Opened): Promise<{ store: PgRingStore; watcher: RingWatcher }> {
  const store = opened.add(new PgRingStore({ connectionString: databaseUrl, onIdleError: (err) => logger.warn({ err }, 'idle ring database connection failed') }), (s) => s.close());
  await store.migrate();
  if (config.ring.bootstrap) await store.initIfEmpty(config.ring.bootstrap);
  const watcher = opened.add(new RingWatcher(store, { pollMs: config.ring.pollMs, notify: config.ring.notify, logger }), (w) => w.close());
  return { store, watcher };
}

/**
 * The router's `grpc.health.v1`: SERVING while it has a ring, reaches at
 * least one shard and is not draining; the same for every service it serves.
 */
class RouterHealth {
  readonly health = new HealthImplementation({ '': 'NOT_SERVING' });
  #services: readonly string[] = [];
  #serving: ServingStatus = 'NOT_SERVING';
  #draining = false;

  constructor(
    private readonly logger: Logger,
    private readonly ready: () => boolean,
  ) {}

  /** Re-evaluates the status (the shard pool calls this when a shard's reachability changes). */
  update(): void {
    const next: ServingStatus = !this.#draining && this.ready() ? 'SERVING' : 'NOT_SERVING';
    if (next === this.#serving) return;
    this.#serving = next;
    this.logger.info({ status: next }, 'router health changed');
    this.health.setStatus('', next);
    for (const s of this.#services) this.health.setStatus(s, next);
  }

  /** Adds the health service to `server`, covering `services`. */
  serve(server: grpc.Server, services: readonly string[]): void {
    this.#services = services;
    for (const s of services) this.health.setStatus(s, this.#serving);
    this.health.addToServer(server);
  }

  /** NOT_SERVING from now on. */
  drain(): void {
    this.#draining = true;
    this.update();
  }
}

/** The router's gRPC server and its interceptors, outermost last. */
function createRouterServer(config: RouterConfig, gates: ReadGates, admission: Admission): grpc.Server {
  const limits = config.limits;
  return new grpc.Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    'grpc.keepalive_permit_without_calls': 1,
    // Outermost last: an over-budget connection is refused before its call waits for a slot to be read.
    // Authentication is inside admission: an over-budget connection is refused before its token is checked.
    interceptors: [
      new ReceiveSlots(limits.maxReceiving, limits.connectionSharePercent).interceptor,
      gates.interceptor,
      authInterceptor({ authenticator: createAuthenticator(config.auth), permissions: permissionTable(modules) }),
      admission.interceptor,
    ],
  });
}

/** What the router serves, and what its drain needs. */
interface RouterServices {
  /** Every service name served (for health). */
  readonly services: string[];
  readonly muxes: StreamMux[];
  readonly feeds: ClusterFeeds;
  readonly groups: { close(): Promise<void> };
  /** Aborted on close: ends subscriptions and ring watches. */
  readonly closingSubscriptions: AbortController;
}

/** Adds the forwarded services (one route per method), subscriptions, consumer groups and the ring service. */
async function addRouterServices(
  server: grpc.Server,
  config: RouterConfig,
  deps: {
    watcher: RingWatcher;
    store: PgRingStore;
    pool: ShardPool;
    links: ShardLinks;
    gates: ReadGates;
    admission: Admission;
    metrics: RouterMetrics;
    registry: Registry;
    logger: Logger;
    tracer: Tracer | undefined;
    shardCredentials: grpc.ChannelCredentials;
    clusterFeeds: GroupFeeds | undefined;
    databaseUrl: string;
    definition: ReturnType<typeof loadPackageDefinition>;
  },
  opened: Opened,
): Promise<RouterServices> {
  const { watcher, store, pool, links, metrics, logger, tracer } = deps;
  const { definition } = deps;
  const protoRoot = loadProtoRoot();
  const routing = buildRoutingTable(protoRoot);
  // Services the router serves itself rather than forwarding to one shard.
  const ownServices = [SUBSCRIPTION_SERVICE, 'shardwrite.v1.ConsumerGroupService', RING_SERVICE];
  const forwarded = Object.fromEntries(Object.entries(definition).filter(([name]) => !ownServices.includes(name)));
  for (const u of routing.unroutable) if (!ownServices.some((name) => u.path.startsWith(`/${name}/`))) logger.warn(u, 'method has no routing key');
  const muxes: StreamMux[] = [];
  const streams = (route: MethodRoute) => {
    const mux = new StreamMux({ route, links, metrics, maxInFlight: config.streamMaxInFlight, overloadRetryAfterMs: config.overloadRetryAfterMs, gates: deps.gates, traced: tracer !== undefined });
    muxes.push(mux);
    return mux;
  };
  const services = addProxyServices(server, {
    definition: forwarded,
    routing,
    watcher,
    pool,
    metrics,
    logger,
    streams,
    links,
    linked: linkedCommands(protoRoot),
    admission: deps.admission,
    traced: tracer !== undefined,
  });
  // Subscriptions and consumer groups: every shard's feed, merged (served by the router itself, not forwarded).
  const feeds = opened.add(new ClusterFeeds({ credentials: deps.shardCredentials, watcher, shardAddresses: () => store.shardAddresses(), logger }), (f) => f.close());
  metrics.watchSharedFeeds(() => feeds.upstreams.stats(), deps.registry);
  const closingSubscriptions = new AbortController();
  services.push(addSubscriptionService(server, { feeds, logger, closing: closingSubscriptions.signal }));
  const groups = opened.add(
    await addConsumerGroupService(server, { feeds: deps.clusterFeeds ?? feeds, databaseUrl: deps.databaseUrl, settings: config.consumerGroups, metrics, logger, definition }),
    (g) => g.close(),
  );
  services.push(groups.serviceName);
  // The ring, for clients that send their commands straight to the owner shards.
  services.push(addRingService(server, { watcher, logger, closing: closingSubscriptions.signal }));
  return { services, muxes, feeds, groups, closingSubscriptions };
}
