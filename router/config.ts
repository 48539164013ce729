/**
 * Everything a router process can be told, read from the environment in one
 * place. `loadRouterConfig` validates it all and throws one `ConfigError`
 * listing every problem.
 */
import { EnvReader, type Env } from '../src/config.js';
import { AUTH_ENV, readAuthSettings, type AuthSettings } from '../src/auth/settings.js';
import { TLS_ENV, readHealthAddress, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';
import { RING_ENV, readRingSettings, type RingSettings } from '../src/ring/index.js';
import { CONSUMER_GROUP_ENV, readConsumerGroupSettings, type ConsumerGroupSettings } from './consumer-groups/settings.js';
import { DEFAULT_ADMISSION } from './admission.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_STREAMS_PER_CONNECTION } from './listener.js';
import { DEFAULT_MAX_RECEIVING } from './receive-slots.js';
import { DEFAULT_SHARD_STALL_MS } from './shard-links.js';

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

/**
 * What bounds the router's memory (see `admission.ts` and `listener.ts`).
 * Beyond a budget a call is refused at once with RESOURCE_EXHAUSTED /
 * OVERLOADED and a retry hint (OVERLOAD_RETRY_AFTER_MS). The defaults fit the
 * 512 MiB limit of the Kubernetes manifests: what admitted calls hold is at
 * most about twice MAX_BYTES_IN_FLIGHT, and requests being read at most
 * MAX_RECEIVING × MAX_MESSAGE_BYTES (plus each open call's HTTP/2 window).
 */
export interface LimitSettings {
  /** MAX_CONNECTIONS — TCP connections open at once; more are closed on accept; default 1024. */
  readonly maxConnections: number;
  /** MAX_STREAMS_PER_CONNECTION — concurrent calls on one connection (`grpc.max_concurrent_streams`); default 128. */
  readonly maxStreamsPerConnection: number;
  /**
   * MAX_RECEIVING — unary requests read at once (each holds up to
   * MAX_MESSAGE_BYTES while it arrives; the others wait in their client's
   * flow-control window); a connection gets CONNECTION_SHARE_PERCENT of them; default 64.
   */
  readonly maxReceiving: number;
  /** MAX_CALLS_IN_FLIGHT — calls in flight router-wide; default 16,384. */
  readonly maxCalls: number;
  /** MAX_BYTES_IN_FLIGHT — request bytes in flight router-wide; default 48 MiB. */
  readonly maxBytes: number;
  /** SHARD_MAX_CALLS_IN_FLIGHT — calls in flight to one shard; default 8192. */
  readonly shardMaxCalls: number;
  /** SHARD_MAX_BYTES_IN_FLIGHT — request bytes in flight to one shard; default 16 MiB. */
  readonly shardMaxBytes: number;
  /**
   * CONNECTION_SHARE_PERCENT — the share of the router-wide and of each
   * shard's budget one caller may hold (so others keep the rest): its
   * principal when it authenticated (all of a principal's connections
   * together), else its connection; default 25.
   */
  readonly connectionSharePercent: number;
  /**
   * SHARD_STALL_MS — a shard with commands waiting that answers nothing, not
   * even a health probe, for this long counts as stalled: its waiting commands
   * get UNAVAILABLE (outcome unknown) and new ones are refused unsent until it
   * answers again; default 1000.
   */
  readonly shardStallMs: number;
}

export interface RouterConfig {
  /** GRPC_ADDRESS — where the router listens; default `127.0.0.1:50051`. */
  readonly grpcAddress: string;
  /**
   * TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (all three or none; unset = plaintext),
   * TLS_RELOAD_MS (5000): the router serves TLS to clients with this certificate and
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
  readonly limits: LimitSettings;
  /** LOG_LEVEL — pino level; default `info`. */
  readonly logLevel: string;
  /**
   * Authentication of callers (the router is the public entry): SHARDWRITE_INSECURE,
   * AUTH_TOKENS, AUTH_JWKS_FILE / AUTH_JWKS_URL, AUTH_JWT_* and AUTH_CLAIM_* (see `AuthSettings`).
   */
  readonly auth: AuthSettings;
  /** SHUTDOWN_GRACE_MS — how long SIGTERM waits for in-flight calls; default 10,000. */
  readonly shutdownGraceMs: number;
  /** CONSUMER_GROUP_* — leases, heartbeats, handover and checkpoint writes of consumer groups (see `ConsumerGroupSettings`). */
  readonly consumerGroups: ConsumerGroupSettings;
}

/** The settings `loadRouterConfig` reads (used by the deployment checks). */
export const ROUTER_ENV = [
  ...AUTH_ENV,
  'GRPC_ADDRESS',
  'METRICS_ADDRESS',
  'BREAKER_ERROR_THRESHOLD_PERCENT',
  'BREAKER_VOLUME_THRESHOLD',
  'BREAKER_WINDOW_MS',
  'BREAKER_RESET_MS',
  'SHARD_RECONNECT_MAX_MS',
  'MAX_MESSAGE_BYTES',
  'LOG_LEVEL',
  'SHUTDOWN_GRACE_MS',
  'STREAM_MAX_IN_FLIGHT',
  'OVERLOAD_RETRY_AFTER_MS',
  'MAX_CONNECTIONS',
  'MAX_STREAMS_PER_CONNECTION',
  'MAX_RECEIVING',
  'MAX_CALLS_IN_FLIGHT',
  'MAX_BYTES_IN_FLIGHT',
  'SHARD_MAX_CALLS_IN_FLIGHT',
  'SHARD_MAX_BYTES_IN_FLIGHT',
  'CONNECTION_SHARE_PERCENT',
  'SHARD_STALL_MS',
  ...RING_ENV,
  ...CONSUMER_GROUP_ENV,
  ...TLS_ENV,
  'HEALTH_ADDRESS',
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
  const tls = readTlsSettings(r);
  const config: RouterConfig = {
    grpcAddress: r.address('GRPC_ADDRESS', '127.0.0.1:50051'),
    tls,
    healthAddress: readHealthAddress(r),
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
    limits: {
      maxConnections: r.int('MAX_CONNECTIONS', DEFAULT_MAX_CONNECTIONS, 1, 1_000_000),
      maxStreamsPerConnection: r.int('MAX_STREAMS_PER_CONNECTION', DEFAULT_MAX_STREAMS_PER_CONNECTION, 1, 1_000_000),
      maxReceiving: r.int('MAX_RECEIVING', DEFAULT_MAX_RECEIVING, 1, 1_000_000),
      maxCalls: r.int('MAX_CALLS_IN_FLIGHT', DEFAULT_ADMISSION.maxCalls, 1, 10_000_000),
      maxBytes: r.int('MAX_BYTES_IN_FLIGHT', DEFAULT_ADMISSION.maxBytes, 1024, 64 * 1024 ** 3),
      shardMaxCalls: r.int('SHARD_MAX_CALLS_IN_FLIGHT', DEFAULT_ADMISSION.shardMaxCalls, 1, 10_000_000),
      shardMaxBytes: r.int('SHARD_MAX_BYTES_IN_FLIGHT', DEFAULT_ADMISSION.shardMaxBytes, 1024, 64 * 1024 ** 3),
      connectionSharePercent: r.int('CONNECTION_SHARE_PERCENT', DEFAULT_ADMISSION.connectionSharePercent, 1, 100),
      shardStallMs: r.int('SHARD_STALL_MS', DEFAULT_SHARD_STALL_MS, 100, 600_000),
    },
    auth: readAuthSettings(r, tls !== undefined),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    consumerGroups: readConsumerGroupSettings(r),
  };
  r.done();
  return config;
}
