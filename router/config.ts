/**
 * Everything a router process can be told, read from the environment in one
 * place. `loadRouterConfig` validates it all and throws one `ConfigError`
 * listing every problem.
 */
import { EnvReader, SERVING_SETTINGS, address, envNames, int, type Env } from '../src/config.js';
import { AUTH_SETTINGS, readAuthSettings, type AuthSettings } from '../src/auth/settings.js';
import { HEALTH_SETTINGS, TLS_SETTINGS, readHealthAddress, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';
import { RING_SETTINGS, readRingSettings, type RingSettings } from '../src/ring/index.js';
import { CONSUMER_GROUP_SETTINGS, readConsumerGroupSettings, type ConsumerGroupSettings } from './consumer-groups/settings.js';
import { DEFAULT_ADMISSION } from './admission.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_STREAMS_PER_CONNECTION } from './listener.js';
import { DEFAULT_MAX_RECEIVING } from './receive-slots.js';
import { DEFAULT_SHARD_STALL_MS } from './shard-links.js';

/** The router's circuit breaker in front of each shard (opossum). */
export interface BreakerSettings {
  /** BREAKER_ERROR_THRESHOLD_PERCENT — failure share in the window that opens it. */
  readonly errorThresholdPercent: number;
  /** BREAKER_VOLUME_THRESHOLD — calls in the window before it may open. */
  readonly volumeThreshold: number;
  /** BREAKER_WINDOW_MS — the rolling window the share is measured over. */
  readonly windowMs: number;
  /** BREAKER_RESET_MS — how long it stays open before letting one trial call through. */
  readonly resetMs: number;
}

/**
 * What bounds the router's memory (see `admission.ts` and `listener.ts`).
 * Beyond a budget a call is refused at once with RESOURCE_EXHAUSTED /
 * OVERLOADED and a retry hint (OVERLOAD_RETRY_AFTER_MS). The defaults fit the
 * 512 MiB limit of the Kubernetes manifests: what admitted calls hold is at
 * most about twice MAX_BYTES_IN_FLIGHT, and requests being read at most
 * MAX_RECEIVING × MAX_MESSAGE_BYTES (plus each open call's HTTP/2 window).
 */
export interface LimitSettings {
  /** MAX_CONNECTIONS — TCP connections open at once; more are closed on accept. */
  readonly maxConnections: number;
  /** MAX_STREAMS_PER_CONNECTION — concurrent calls on one connection (`grpc.max_concurrent_streams`). */
  readonly maxStreamsPerConnection: number;
  /**
   * MAX_RECEIVING — unary requests read at once (each holds up to
   * MAX_MESSAGE_BYTES while it arrives; the others wait in their client's
   * flow-control window); a connection gets CONNECTION_SHARE_PERCENT of them.
   */
  readonly maxReceiving: number;
  /** MAX_CALLS_IN_FLIGHT — calls in flight router-wide. */
  readonly maxCalls: number;
  /** MAX_BYTES_IN_FLIGHT — request bytes in flight router-wide. */
  readonly maxBytes: number;
  /** SHARD_MAX_CALLS_IN_FLIGHT — calls in flight to one shard. */
  readonly shardMaxCalls: number;
  /** SHARD_MAX_BYTES_IN_FLIGHT — request bytes in flight to one shard. */
  readonly shardMaxBytes: number;
  /**
   * CONNECTION_SHARE_PERCENT — the share of the router-wide and of each
   * shard's budget one caller may hold (so others keep the rest): its
   * principal when it authenticated (all of a principal's connections
   * together), else its connection.
   */
  readonly connectionSharePercent: number;
  /**
   * SHARD_STALL_MS — a shard with commands waiting that answers nothing, not
   * even a health probe, for this long counts as stalled: its waiting commands
   * get UNAVAILABLE (outcome unknown) and new ones are refused unsent until it
   * answers again.
   */
  readonly shardStallMs: number;
}

/** What a router reads; each setting's default and range are in {@link ROUTER_SETTINGS}, written once there. */
export interface RouterConfig {
  /** GRPC_ADDRESS — where the router listens. */
  readonly grpcAddress: string;
  /**
   * TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (all three or none; unset = plaintext),
   * TLS_RELOAD_MS: the router serves TLS to clients with this certificate and
   * presents it to the shards as its client identity (mutual TLS, verified against
   * TLS_CA_FILE); reloaded when the files change. See `src/grpc/tls.ts`.
   */
  readonly tls: TlsSettings | undefined;
  /**
   * HEALTH_ADDRESS — a plaintext listener serving only `grpc.health.v1.Health`, for
   * probes that cannot speak TLS (Kubernetes' native gRPC probes); `off` (the default) = none.
   * It reveals the serving status and nothing else.
   */
  readonly healthAddress: string | undefined;
  /**
   * The ring: RING_DATABASE_URL (required), RING_BOOTSTRAP (unset = wait for
   * the ring to be written), RING_POLL_MS, RING_NOTIFY.
   */
  readonly ring: RingSettings;
  /** METRICS_ADDRESS — Prometheus `/metrics` listener, `host:port` or `off`; port 0 = any free port. */
  readonly metricsAddress: string | undefined;
  readonly breaker: BreakerSettings;
  /**
   * SHARD_RECONNECT_MAX_MS — longest wait between attempts to reconnect to a
   * shard that went away (the default: a restarted shard is used again
   * within about a second).
   */
  readonly shardReconnectMaxMs: number;
  /** MAX_MESSAGE_BYTES — largest request accepted (larger: RESOURCE_EXHAUSTED). */
  readonly maxMessageBytes: number;
  /**
   * STREAM_MAX_IN_FLIGHT — commands in flight per caller's CommandStreamService
   * stream before RESOURCE_EXHAUSTED outcomes.
   * OVERLOAD_RETRY_AFTER_MS — the retry hint sent with them.
   */
  readonly streamMaxInFlight: number;
  readonly overloadRetryAfterMs: number;
  readonly limits: LimitSettings;
  /** LOG_LEVEL — pino level. */
  readonly logLevel: string;
  /**
   * Authentication of callers (the router is the public entry): SHARDWRITE_INSECURE,
   * AUTH_TOKENS, AUTH_JWKS_FILE / AUTH_JWKS_URL, AUTH_JWT_* and AUTH_CLAIM_* (see `AuthSettings`).
   */
  readonly auth: AuthSettings;
  /** SHUTDOWN_GRACE_MS — how long SIGTERM waits for in-flight calls. */
  readonly shutdownGraceMs: number;
  /** CONSUMER_GROUP_* — leases, heartbeats, handover and checkpoint writes of consumer groups (see `ConsumerGroupSettings`). */
  readonly consumerGroups: ConsumerGroupSettings;
}

/**
 * Every setting `loadRouterConfig` reads, with its default and range (see
 * `RouterConfig` for what each one means).
 */
export const ROUTER_SETTINGS = {
  ...AUTH_SETTINGS,
  ...SERVING_SETTINGS,
  METRICS_ADDRESS: address('127.0.0.1:9465'),
  BREAKER_ERROR_THRESHOLD_PERCENT: int(50, 1, 100),
  BREAKER_VOLUME_THRESHOLD: int(5, 0, 1_000_000),
  BREAKER_WINDOW_MS: int(10_000, 100, 3_600_000),
  BREAKER_RESET_MS: int(1000, 10, 3_600_000),
  SHARD_RECONNECT_MAX_MS: int(1000, 100, 600_000),
  MAX_CONNECTIONS: int(DEFAULT_MAX_CONNECTIONS, 1, 1_000_000),
  MAX_STREAMS_PER_CONNECTION: int(DEFAULT_MAX_STREAMS_PER_CONNECTION, 1, 1_000_000),
  MAX_RECEIVING: int(DEFAULT_MAX_RECEIVING, 1, 1_000_000),
  MAX_CALLS_IN_FLIGHT: int(DEFAULT_ADMISSION.maxCalls, 1, 10_000_000),
  MAX_BYTES_IN_FLIGHT: int(DEFAULT_ADMISSION.maxBytes, 1024, 64 * 1024 ** 3),
  SHARD_MAX_CALLS_IN_FLIGHT: int(DEFAULT_ADMISSION.shardMaxCalls, 1, 10_000_000),
  SHARD_MAX_BYTES_IN_FLIGHT: int(DEFAULT_ADMISSION.shardMaxBytes, 1024, 64 * 1024 ** 3),
  CONNECTION_SHARE_PERCENT: int(DEFAULT_ADMISSION.connectionSharePercent, 1, 100),
  SHARD_STALL_MS: int(DEFAULT_SHARD_STALL_MS, 100, 600_000),
  ...RING_SETTINGS,
  ...CONSUMER_GROUP_SETTINGS,
  ...TLS_SETTINGS,
  ...HEALTH_SETTINGS,
} as const;

/** The variables `loadRouterConfig` reads (`npm start` and the deployment checks use this list). */
export const ROUTER_ENV = envNames(ROUTER_SETTINGS);

/**
 * Reads and validates the router's settings from `env` (see `RouterConfig`
 * for each one and its default).
 *
 * @throws ConfigError listing every problem found, not just the first.
 */
export function loadRouterConfig(env: Env): RouterConfig {
  const r = new EnvReader(env, ROUTER_SETTINGS);
  const tls = readTlsSettings(r);
  const config: RouterConfig = {
    grpcAddress: r.address('GRPC_ADDRESS'),
    tls,
    healthAddress: readHealthAddress(r),
    ring: readRingSettings(r, true),
    metricsAddress: r.string('METRICS_ADDRESS') === 'off' ? undefined : r.address('METRICS_ADDRESS'),
    breaker: {
      errorThresholdPercent: r.int('BREAKER_ERROR_THRESHOLD_PERCENT'),
      volumeThreshold: r.int('BREAKER_VOLUME_THRESHOLD'),
      windowMs: r.int('BREAKER_WINDOW_MS'),
      resetMs: r.int('BREAKER_RESET_MS'),
    },
    shardReconnectMaxMs: r.int('SHARD_RECONNECT_MAX_MS'),
    maxMessageBytes: r.int('MAX_MESSAGE_BYTES'),
    streamMaxInFlight: r.int('STREAM_MAX_IN_FLIGHT'),
    overloadRetryAfterMs: r.int('OVERLOAD_RETRY_AFTER_MS'),
    limits: {
      maxConnections: r.int('MAX_CONNECTIONS'),
      maxStreamsPerConnection: r.int('MAX_STREAMS_PER_CONNECTION'),
      maxReceiving: r.int('MAX_RECEIVING'),
      maxCalls: r.int('MAX_CALLS_IN_FLIGHT'),
      maxBytes: r.int('MAX_BYTES_IN_FLIGHT'),
      shardMaxCalls: r.int('SHARD_MAX_CALLS_IN_FLIGHT'),
      shardMaxBytes: r.int('SHARD_MAX_BYTES_IN_FLIGHT'),
      connectionSharePercent: r.int('CONNECTION_SHARE_PERCENT'),
      shardStallMs: r.int('SHARD_STALL_MS'),
    },
    auth: readAuthSettings(r, tls !== undefined),
    logLevel: r.oneOf('LOG_LEVEL'),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS'),
    consumerGroups: readConsumerGroupSettings(r),
  };
  r.done();
  return config;
}
