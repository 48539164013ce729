/**
 * Everything a router process can be told, read from the environment in one
 * place. `loadRouterConfig` validates it all and throws one `ConfigError`
 * listing every problem.
 */
import { EnvReader, type Env } from '../src/config.js';
import { RING_ENV, readRingSettings, type RingSettings } from '../src/ring/index.js';
import { CONSUMER_GROUP_ENV, readConsumerGroupSettings, type ConsumerGroupSettings } from './consumer-groups/settings.js';

/** The router's circuit breaker in front of each shard (opossum). */
export interface BreakerSettings {
  /** BREAKER_ERROR_THRESHOLD_PERCENT — failure share in the window that opens it; default 50. */
  readonly errorThresholdPercent: number;
  /** BREAKER_VOLUME_THRESHOLD — calls in the window before it may open; default 5. */
  readonly volumeThreshold: number;
  /** BREAKER_WINDOW_MS — the rolling window the share is measured over; default 10,000. */
  readonly windowMs: number;
  /** BREAKER_RESET_MS — how long it stays open before letting one trial call through; default 1000. */
  readonly resetMs: number;
}

export interface RouterConfig {
  /** GRPC_ADDRESS — where the router listens; default `127.0.0.1:50051`. */
  readonly grpcAddress: string;
  /**
   * The ring: RING_DATABASE_URL (required), RING_BOOTSTRAP (unset = wait for
   * the ring to be written), RING_POLL_MS (2000), RING_NOTIFY (`on`).
   */
  readonly ring: RingSettings;
  /** METRICS_ADDRESS — Prometheus `/metrics` listener, `host:port` or `off`; default `127.0.0.1:9465`; port 0 = any free port. */
  readonly metricsAddress: string | undefined;
  readonly breaker: BreakerSettings;
  /**
   * SHARD_RECONNECT_MAX_MS — longest wait between attempts to reconnect to a
   * shard that went away; default 1000, so a restarted shard is used again
   * within about a second.
   */
  readonly shardReconnectMaxMs: number;
  /** MAX_MESSAGE_BYTES — largest request accepted; default 1 MiB (larger: RESOURCE_EXHAUSTED). */
  readonly maxMessageBytes: number;
  /**
   * STREAM_MAX_IN_FLIGHT — commands in flight per caller's CommandStreamService
   * stream before RESOURCE_EXHAUSTED outcomes; default 1024.
   * OVERLOAD_RETRY_AFTER_MS — the retry hint sent with them; default 100.
   */
  readonly streamMaxInFlight: number;
  readonly overloadRetryAfterMs: number;
  /** LOG_LEVEL — pino level; default `info`. */
  readonly logLevel: string;
  /** SHUTDOWN_GRACE_MS — how long SIGTERM waits for in-flight calls; default 10,000. */
  readonly shutdownGraceMs: number;
  /** CONSUMER_GROUP_* — leases, heartbeats, handover and checkpoint writes of consumer groups (see `ConsumerGroupSettings`). */
  readonly consumerGroups: ConsumerGroupSettings;
}

/** The settings `loadRouterConfig` reads (used by the deployment checks). */
export const ROUTER_ENV = [
  'GRPC_ADDRESS', 'METRICS_ADDRESS', 'BREAKER_ERROR_THRESHOLD_PERCENT', 'BREAKER_VOLUME_THRESHOLD',
  'BREAKER_WINDOW_MS', 'BREAKER_RESET_MS', 'SHARD_RECONNECT_MAX_MS', 'MAX_MESSAGE_BYTES', 'LOG_LEVEL',
  'SHUTDOWN_GRACE_MS', 'STREAM_MAX_IN_FLIGHT', 'OVERLOAD_RETRY_AFTER_MS', ...RING_ENV,
  ...CONSUMER_GROUP_ENV,
] as const;

/**
 * Reads and validates the router's settings from `env` (see `RouterConfig`
 * for each one and its default).
 *
 * @throws ConfigError listing every problem found, not just the first.
 */
export function loadRouterConfig(env: Env): RouterConfig {
  const r = new EnvReader(env);
  const metrics = r.string('METRICS_ADDRESS', '127.0.0.1:9465');
  const config: RouterConfig = {
    grpcAddress: r.address('GRPC_ADDRESS', '127.0.0.1:50051'),
    ring: readRingSettings(r, true),
    metricsAddress: metrics === 'off' ? undefined : r.address('METRICS_ADDRESS', '127.0.0.1:9465'),
    breaker: {
      errorThresholdPercent: r.int('BREAKER_ERROR_THRESHOLD_PERCENT', 50, 1, 100),
      volumeThreshold: r.int('BREAKER_VOLUME_THRESHOLD', 5, 0, 1_000_000),
      windowMs: r.int('BREAKER_WINDOW_MS', 10_000, 100, 3_600_000),
      resetMs: r.int('BREAKER_RESET_MS', 1000, 10, 3_600_000),
    },
    shardReconnectMaxMs: r.int('SHARD_RECONNECT_MAX_MS', 1000, 100, 600_000),
    maxMessageBytes: r.int('MAX_MESSAGE_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    streamMaxInFlight: r.int('STREAM_MAX_IN_FLIGHT', 1024, 1, 1_000_000),
    overloadRetryAfterMs: r.int('OVERLOAD_RETRY_AFTER_MS', 100, 0, 600_000),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    consumerGroups: readConsumerGroupSettings(r),
  };
  r.done();
  return config;
}
