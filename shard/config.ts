/**
 * Everything a shard process can be told, read from the environment in one
 * place. `loadShardConfig` validates it all and throws one `ConfigError`
 * listing every problem.
 */
import { EnvReader, SERVING_SETTINGS, address, choice, envNames, int, text, url, type Env } from '../src/config.js';
import { AUTH_SETTINGS, readAuthSettings, type AuthSettings } from '../src/auth/settings.js';
import { DEV_SNAPSHOT_KEY, MIN_SNAPSHOT_KEY_BYTES, REDIS_SNAPSHOT_CACHE_DEFAULTS } from '../src/cache/redis-snapshot-cache.js';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions } from '../src/pipeline/pipeline.js';
import { DEFAULT_SNAPSHOT_POLICY, parseSnapshotIntervals, type SnapshotPolicy } from '../src/pipeline/snapshotter.js';
import { deciderRegistry, modules } from '../src/domain/index.js';
import { HEALTH_SETTINGS, SHARD_TLS_SETTINGS, readHealthAddress, readLinkIdentities, readTlsSettings, type TlsSettings } from '../src/grpc/tls.js';
import { RING_SETTINGS, SHARD_ID_PATTERN, readRingSettings, type RingSettings } from '../src/ring/index.js';
import { DEFAULT_TAIL_COALESCE_MS } from '../src/subscriptions/live-tail.js';
import { DEFAULT_OWNER_CACHE_BYTES, DEFAULT_OWNER_CACHE_ENTRIES } from '../src/pipeline/aggregate-cache.js';
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ENTRIES, DEFAULT_STATEMENT_TIMEOUT_MS } from '../src/store/group-commit-writer.js';
import { DEFAULT_STORE_BREAKER_RESET_MS, DEFAULT_STORE_BREAKER_WINDOW_MS, DEFAULT_STORE_CALL_TIMEOUT_MS } from '../src/store/store-breaker.js';
import { DEV_MASTER_KEY, parseMasterKey } from '../src/privacy/key-provider.js';
import { DEFAULT_KEY_TTL_MS } from '../src/privacy/subject-keys.js';
import { readFileSync } from 'node:fs';

/** How a shard protects personal data (crypto-shredding, `src/privacy/`). */
export interface PersonalDataSettings {
  /**
   * PERSONAL_DATA_ENCRYPTION — `on` (the default): declared personal fields are stored
   * encrypted with their subject's key, which lives in the ring database (so it needs
   * RING_DATABASE_URL; without a ring database a shard stores them as decided, with a
   * warning). `off`: stored in plaintext (measurements only).
   */
  readonly encryption: boolean;
  /**
   * PERSONAL_DATA_MASTER_KEY (base64 of 32 bytes) or PERSONAL_DATA_MASTER_KEY_FILE (a file
   * holding it) — wraps every subject's data key; the same on every shard. Required with a
   * ring database unless SHARDWRITE_INSECURE=true, where a public development key is used,
   * with a warning.
   */
  readonly masterKey: Buffer;
  readonly masterKeyIsDev: boolean;
  /** PERSONAL_DATA_KEY_TTL_MS — how long an unwrapped data key stays cached (60000). */
  readonly keyTtlMs: number;
}

/** What a shard reads; each setting's default and range are in {@link SHARD_SETTINGS}, written once there. */
export interface ShardConfig {
  /** SHARD_ID — this shard's stable id on the ring. */
  readonly shardId: string;
  /** GRPC_ADDRESS — where the gRPC server listens. */
  readonly grpcAddress: string;
  /** DATABASE_URL — this shard's own PostgreSQL event store (required). */
  readonly databaseUrl: string;
  /**
   * TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (all three or none; unset = plaintext),
   * TLS_RELOAD_MS: the shard serves TLS with this certificate, reloaded when the
   * files change; see `src/grpc/tls.ts`.
   */
  readonly tls: TlsSettings | undefined;
  /**
   * TLS_LINK_IDENTITIES — the client-certificate identities (SAN DNS or URI, or CN)
   * allowed on the internal services (the router's link, ShardFeed).
   * Used only with TLS.
   */
  readonly linkIdentities: ReadonlySet<string>;
  /**
   * HEALTH_ADDRESS — a plaintext listener serving only `grpc.health.v1.Health`, for
   * probes that cannot speak TLS (Kubernetes' native gRPC probes); `off` (the default) = none.
   * It reveals the serving status and nothing else.
   */
  readonly healthAddress: string | undefined;
  /**
   * REDIS_URL — snapshot cache; unset = no Redis. `rediss://` for TLS; ACL
   * credentials as `rediss://user:password@host:6379` (never logged).
   */
  readonly redisUrl: string | undefined;
  /**
   * REDIS_CA_FILE — with a `rediss://` REDIS_URL, the CA certificate(s) (PEM) the
   * Redis server's certificate must chain to (its name must match the URL's host);
   * unset = Node's default trust store.
   */
  readonly redisCaFile: string | undefined;
  /**
   * REDIS_SNAPSHOT_KEY — the HMAC-SHA256 key that authenticates Redis snapshot
   * entries, the same on every shard, at least 32 bytes. Required with REDIS_URL
   * unless SHARDWRITE_INSECURE=true; in insecure mode it defaults to a public
   * development key, with a warning at start-up (`redisSnapshotKeyIsDev`).
   */
  readonly redisSnapshotKey: string;
  readonly redisSnapshotKeyIsDev: boolean;
  /**
   * The Redis snapshot cache (used only with REDIS_URL): REDIS_SNAPSHOT_TTL_SECONDS
   * (entry lifetime), REDIS_TIMEOUT_MS (per command; slower is a miss), REDIS_KEY_PREFIX,
   * REDIS_BREAKER_RESET_MS (how long Redis is bypassed after its breaker opens).
   */
  readonly redisSnapshotTtlSeconds: number;
  readonly redisTimeoutMs: number;
  readonly redisKeyPrefix: string;
  readonly redisBreakerResetMs: number;
  /**
   * Snapshot policy: SNAPSHOT_INTERVAL (events since the last snapshot),
   * SNAPSHOT_INTERVALS (per aggregate type, `order-lines=20,order-header=100`; unset = none),
   * SNAPSHOT_SLOW_LOAD_MS (unset = off; a load at least this slow snapshots too).
   */
  readonly snapshots: SnapshotPolicy;
  /** METRICS_ADDRESS — Prometheus `/metrics` listener, `host:port`; port 0 = any free port. */
  readonly metricsAddress: string | undefined;
  /** DB_POOL_SIZE — pooled read connections (the writer has its own). */
  readonly dbPoolSize: number;
  /** DB_STATEMENT_TIMEOUT_MS — bound on every statement; default {@link DEFAULT_STATEMENT_TIMEOUT_MS}. */
  readonly statementTimeoutMs: number;
  /** BATCH_MAX_ENTRIES / BATCH_MAX_BYTES — caps of one group-commit batch; defaults {@link DEFAULT_MAX_BATCH_ENTRIES} and {@link DEFAULT_MAX_BATCH_BYTES}. */
  readonly batchMaxEntries: number;
  readonly batchMaxBytes: number;
  /**
   * TAIL_COALESCE_MS — least time between two reads of the store by the live tail that
   * subscriptions share: commits closer together are delivered by one read (fewer queries
   * and messages per event, at most this much more delivery latency).
   */
  readonly tailCoalesceMs: number;
  /** CACHE_MAX_ENTRIES / CACHE_MAX_BYTES — owner cache bounds; defaults {@link DEFAULT_OWNER_CACHE_ENTRIES} and {@link DEFAULT_OWNER_CACHE_BYTES}. */
  readonly cacheMaxEntries: number;
  readonly cacheMaxBytes: number;
  /** MAX_MESSAGE_BYTES — largest request accepted (larger: RESOURCE_EXHAUSTED). */
  readonly maxMessageBytes: number;
  /** STREAM_MAX_IN_FLIGHT — commands executing at once per CommandStreamService stream. */
  readonly streamMaxInFlight: number;
  /** Authentication: SHARDWRITE_INSECURE, AUTH_TOKENS, AUTH_JWKS_FILE / AUTH_JWKS_URL, … (see `AuthSettings`). */
  readonly auth: AuthSettings;
  /** LOG_LEVEL — pino level. */
  readonly logLevel: string;
  /**
   * The breaker in front of PostgreSQL: STORE_CALL_TIMEOUT_MS (a slower call fails and counts; default
   * {@link DEFAULT_STORE_CALL_TIMEOUT_MS}), STORE_BREAKER_RESET_MS (open → half-open after; default
   * {@link DEFAULT_STORE_BREAKER_RESET_MS}), STORE_BREAKER_WINDOW_MS (the window the failure rate is
   * measured over; default {@link DEFAULT_STORE_BREAKER_WINDOW_MS}).
   */
  readonly storeBreaker: { readonly callTimeoutMs: number; readonly resetTimeoutMs: number; readonly windowMs: number };
  /** SHUTDOWN_GRACE_MS — how long SIGTERM waits for in-flight calls. */
  readonly shutdownGraceMs: number;
  /**
   * Pipeline limits: RETRY_MAX_ATTEMPTS, RETRY_BASE_MS, RETRY_CAP_MS,
   * RETRY_BUDGET_MS, LOAD_TIMEOUT_MS, MAX_IN_FLIGHT,
   * CALLER_SHARE_PERCENT (the share of MAX_IN_FLIGHT one caller — its principal, else its
   * connection; through a router, the caller the router names — may hold before OVERLOADED),
   * MAX_QUEUED_PER_STREAM, MAX_COMMANDS_PER_ENTRY, OVERLOAD_RETRY_AFTER_MS,
   * MOVE_WAIT_MS (how long a command for a stream that a rebalance is moving away waits for
   * the new ring; answered WRONG_SHARD, which the router retries at the new owner, when the ring
   * comes in time, else UNAVAILABLE / STREAM_MOVING; bounded by the call's deadline),
   * ASSUME_NEW_STREAMS (a command for a stream not in memory is first decided as if the
   * stream were new, without reading it; the append at version 0 refutes that when it exists,
   * and the command is then decided again on the stream as read; `off` reads first).
   */
  readonly pipeline: PipelineOptions;
  /**
   * The ring: RING_DATABASE_URL (unset = this shard owns every aggregate at
   * epoch 0, the single-shard mode), RING_BOOTSTRAP (unset), RING_POLL_MS
   * (re-read interval), RING_NOTIFY. See `RingSettings`.
   */
  readonly ring: RingSettings;
  readonly personalData: PersonalDataSettings;
}

/**
 * Every setting `loadShardConfig` reads, with its default and range (see
 * `ShardConfig` for what each one means).
 */
export const SHARD_SETTINGS = {
  ...SERVING_SETTINGS,
  SHARD_ID: text('shard-0'),
  DATABASE_URL: url('postgres:', 'postgresql:'),
  REDIS_URL: url('redis:', 'rediss:'),
  REDIS_CA_FILE: text(),
  METRICS_ADDRESS: address('127.0.0.1:9464'),
  DB_POOL_SIZE: int(8, 1, 200),
  DB_STATEMENT_TIMEOUT_MS: int(DEFAULT_STATEMENT_TIMEOUT_MS, 100, 600_000),
  BATCH_MAX_ENTRIES: int(DEFAULT_MAX_BATCH_ENTRIES, 1, 100_000),
  BATCH_MAX_BYTES: int(DEFAULT_MAX_BATCH_BYTES, 1024, 1024 * 1024 * 1024),
  TAIL_COALESCE_MS: int(DEFAULT_TAIL_COALESCE_MS, 0, 1000),
  CACHE_MAX_ENTRIES: int(DEFAULT_OWNER_CACHE_ENTRIES, 0, 10_000_000),
  CACHE_MAX_BYTES: int(DEFAULT_OWNER_CACHE_BYTES, 0, 64 * 1024 * 1024 * 1024),
  ...AUTH_SETTINGS,
  RETRY_MAX_ATTEMPTS: int(DEFAULT_PIPELINE_OPTIONS.maxAttempts, 1, 100),
  RETRY_BASE_MS: int(DEFAULT_PIPELINE_OPTIONS.retryBaseMs, 0, 60_000),
  RETRY_CAP_MS: int(DEFAULT_PIPELINE_OPTIONS.retryCapMs, 0, 60_000),
  RETRY_BUDGET_MS: int(DEFAULT_PIPELINE_OPTIONS.retryBudgetMs, 0, 600_000),
  LOAD_TIMEOUT_MS: int(DEFAULT_PIPELINE_OPTIONS.loadTimeoutMs, 1, 600_000),
  MAX_IN_FLIGHT: int(DEFAULT_PIPELINE_OPTIONS.maxInFlight, 1, 10_000_000),
  CALLER_SHARE_PERCENT: int(DEFAULT_PIPELINE_OPTIONS.callerSharePercent, 1, 100),
  MAX_QUEUED_PER_STREAM: int(DEFAULT_PIPELINE_OPTIONS.maxQueuedPerStream, 1, 10_000_000),
  MAX_COMMANDS_PER_ENTRY: int(DEFAULT_PIPELINE_OPTIONS.maxCommandsPerEntry, 1, 100_000),
  STORE_CALL_TIMEOUT_MS: int(DEFAULT_STORE_CALL_TIMEOUT_MS, 10, 600_000),
  STORE_BREAKER_RESET_MS: int(DEFAULT_STORE_BREAKER_RESET_MS, 10, 600_000),
  STORE_BREAKER_WINDOW_MS: int(DEFAULT_STORE_BREAKER_WINDOW_MS, 100, 600_000),
  MOVE_WAIT_MS: int(DEFAULT_PIPELINE_OPTIONS.moveWaitMs, 0, 60_000),
  ASSUME_NEW_STREAMS: choice(DEFAULT_PIPELINE_OPTIONS.assumeNewStreams ? 'on' : 'off', ['on', 'off']),
  REDIS_SNAPSHOT_TTL_SECONDS: int(REDIS_SNAPSHOT_CACHE_DEFAULTS.ttlSeconds, 1, 30 * 24 * 3600),
  REDIS_TIMEOUT_MS: int(REDIS_SNAPSHOT_CACHE_DEFAULTS.timeoutMs, 1, 60_000),
  REDIS_KEY_PREFIX: text(REDIS_SNAPSHOT_CACHE_DEFAULTS.keyPrefix),
  REDIS_BREAKER_RESET_MS: int(REDIS_SNAPSHOT_CACHE_DEFAULTS.breakerResetMs, 10, 600_000),
  REDIS_SNAPSHOT_KEY: text(),
  ...HEALTH_SETTINGS,
  SNAPSHOT_INTERVAL: int(DEFAULT_SNAPSHOT_POLICY.interval, 1, 1_000_000),
  SNAPSHOT_INTERVALS: text(),
  SNAPSHOT_SLOW_LOAD_MS: int(undefined, 1, 600_000),
  ...RING_SETTINGS,
  ...SHARD_TLS_SETTINGS,
  PERSONAL_DATA_ENCRYPTION: choice('on', ['on', 'off']),
  PERSONAL_DATA_MASTER_KEY: text(),
  PERSONAL_DATA_MASTER_KEY_FILE: text(),
  PERSONAL_DATA_KEY_TTL_MS: int(DEFAULT_KEY_TTL_MS, 0, 24 * 3600 * 1000),
} as const;

/** The variables `loadShardConfig` reads (`npm start` and the deployment checks use this list). */
export const SHARD_ENV = envNames(SHARD_SETTINGS);

type ShardReader = EnvReader<typeof SHARD_SETTINGS>;

export function loadShardConfig(env: Env): ShardConfig {
  const r = new EnvReader(env, SHARD_SETTINGS);
  const shardId = r.string('SHARD_ID');
  if (!SHARD_ID_PATTERN.test(shardId)) r.problem(`SHARD_ID must be a DNS label like shard-0 (got "${shardId}")`);
  const tls = readTlsSettings(r);
  const auth = readAuthSettings(r, tls !== undefined);
  const redisUrl = r.url('REDIS_URL', false);
  const redisCaFile = r.optionalString('REDIS_CA_FILE');
  if (redisCaFile !== undefined && protocolOf(redisUrl) !== 'rediss:') r.problem('REDIS_CA_FILE needs a rediss:// REDIS_URL (TLS to Redis)');
  const snapshotKey = r.optionalString('REDIS_SNAPSHOT_KEY');
  if (snapshotKey !== undefined && Buffer.byteLength(snapshotKey) < MIN_SNAPSHOT_KEY_BYTES) r.problem(`REDIS_SNAPSHOT_KEY must be at least ${MIN_SNAPSHOT_KEY_BYTES} bytes`);
  if (snapshotKey === undefined && redisUrl !== undefined && !auth.insecure) {
    r.problem('REDIS_SNAPSHOT_KEY is required with REDIS_URL (the same secret on every shard, at least 32 bytes): it authenticates the snapshots shards put in Redis');
  }
  const ring = readRingSettings(r, false);
  const config: ShardConfig = {
    shardId,
    grpcAddress: r.address('GRPC_ADDRESS'),
    databaseUrl: r.url('DATABASE_URL', true) ?? '',
    tls,
    linkIdentities: readLinkIdentities(r),
    healthAddress: readHealthAddress(r),
    redisUrl,
    redisCaFile,
    redisSnapshotKey: snapshotKey ?? DEV_SNAPSHOT_KEY,
    redisSnapshotKeyIsDev: snapshotKey === undefined,
    redisSnapshotTtlSeconds: r.int('REDIS_SNAPSHOT_TTL_SECONDS'),
    redisTimeoutMs: r.int('REDIS_TIMEOUT_MS'),
    redisKeyPrefix: r.string('REDIS_KEY_PREFIX'),
    redisBreakerResetMs: r.int('REDIS_BREAKER_RESET_MS'),
    snapshots: readSnapshotPolicy(r),
    metricsAddress: r.string('METRICS_ADDRESS') === 'off' ? undefined : r.address('METRICS_ADDRESS'),
    dbPoolSize: r.int('DB_POOL_SIZE'),
    statementTimeoutMs: r.int('DB_STATEMENT_TIMEOUT_MS'),
    batchMaxEntries: r.int('BATCH_MAX_ENTRIES'),
    batchMaxBytes: r.int('BATCH_MAX_BYTES'),
    tailCoalesceMs: r.int('TAIL_COALESCE_MS'),
    cacheMaxEntries: r.int('CACHE_MAX_ENTRIES'),
    cacheMaxBytes: r.int('CACHE_MAX_BYTES'),
    maxMessageBytes: r.int('MAX_MESSAGE_BYTES'),
    streamMaxInFlight: r.int('STREAM_MAX_IN_FLIGHT'),
    auth,
    logLevel: r.oneOf('LOG_LEVEL'),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS'),
    storeBreaker: {
      callTimeoutMs: r.int('STORE_CALL_TIMEOUT_MS'),
      resetTimeoutMs: r.int('STORE_BREAKER_RESET_MS'),
      windowMs: r.int('STORE_BREAKER_WINDOW_MS'),
    },
    pipeline: {
      maxAttempts: r.int('RETRY_MAX_ATTEMPTS'),
      retryBaseMs: r.int('RETRY_BASE_MS'),
      retryCapMs: r.int('RETRY_CAP_MS'),
      retryBudgetMs: r.int('RETRY_BUDGET_MS'),
      loadTimeoutMs: r.int('LOAD_TIMEOUT_MS'),
      maxInFlight: r.int('MAX_IN_FLIGHT'),
      callerSharePercent: r.int('CALLER_SHARE_PERCENT'),
      maxQueuedPerStream: r.int('MAX_QUEUED_PER_STREAM'),
      maxCommandsPerEntry: r.int('MAX_COMMANDS_PER_ENTRY'),
      overloadRetryAfterMs: r.int('OVERLOAD_RETRY_AFTER_MS'),
      moveWaitMs: r.int('MOVE_WAIT_MS'),
      assumeNewStreams: r.onOff('ASSUME_NEW_STREAMS'),
    },
    ring,
    personalData: readPersonalData(r, auth.insecure, ring.databaseUrl !== undefined),
  };
  r.done();
  return config;
}

function readPersonalData(r: ShardReader, insecure: boolean, withRing: boolean): PersonalDataSettings {
  const encryption = r.onOff('PERSONAL_DATA_ENCRYPTION');
  const inline = r.optionalString('PERSONAL_DATA_MASTER_KEY');
  const file = r.optionalString('PERSONAL_DATA_MASTER_KEY_FILE');
  let masterKey: Buffer | undefined;
  if (inline !== undefined && file !== undefined) r.problem('set PERSONAL_DATA_MASTER_KEY or PERSONAL_DATA_MASTER_KEY_FILE, not both');
  const text = inline ?? (file === undefined ? undefined : readKeyFile(r, file));
  if (text !== undefined) {
    try {
      masterKey = parseMasterKey(text);
    } catch (err) {
      r.problem(`the personal-data master key ${(err as Error).message}`);
    }
  } else if (encryption && withRing && !insecure) {
    r.problem("PERSONAL_DATA_MASTER_KEY or PERSONAL_DATA_MASTER_KEY_FILE is required (32 random bytes, base64, the same on every shard: `openssl rand -base64 32`): it wraps the data subjects' keys");
  }
  return {
    encryption,
    masterKey: masterKey ?? DEV_MASTER_KEY,
    masterKeyIsDev: masterKey === undefined,
    keyTtlMs: r.int('PERSONAL_DATA_KEY_TTL_MS'),
  };
}

function readKeyFile(r: ShardReader, file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    r.problem(`PERSONAL_DATA_MASTER_KEY_FILE cannot be read: ${(err as Error).message}`);
    return undefined;
  }
}

function readSnapshotPolicy(r: ShardReader): SnapshotPolicy {
  const spec = r.optionalString('SNAPSHOT_INTERVALS');
  const parsed = spec ? parseSnapshotIntervals(spec, new Set(deciderRegistry(modules).keys())) : { intervals: {}, problems: [] };
  for (const p of parsed.problems) r.problem(p);
  return {
    interval: r.int('SNAPSHOT_INTERVAL'),
    intervals: parsed.intervals,
    slowLoadMs: r.optionalInt('SNAPSHOT_SLOW_LOAD_MS'),
  };
}

/** The URL's protocol, or undefined when it does not parse (that is a problem of its own; a thrown TypeError would carry the URL, password and all). */
function protocolOf(url: string | undefined): string | undefined {
  try {
    return url === undefined ? undefined : new URL(url).protocol;
  } catch {
    return undefined;
  }
}
